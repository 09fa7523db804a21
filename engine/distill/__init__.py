"""PIDDM: physics-informed distillation of the teacher into a one-step generator."""
