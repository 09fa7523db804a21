"""One widget per workflow step: model, inputs, task, results, compare, training."""
