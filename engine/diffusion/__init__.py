"""The teacher: an EDM diffusion model (Karras et al. 2022) of joint PDE fields.

unet (network F_θ) → precond (denoiser D_θ) → loss (training objective) → sampler (Heun ODE)
→ train (train_teacher) → model (load_teacher, Teacher.sample, sample_teacher).
"""
