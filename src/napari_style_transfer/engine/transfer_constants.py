"""Constants shared by the optimisation loop and the memory estimate."""

#: L-BFGS curvature pairs kept (each pair: two image-sized fp32 vectors).
LBFGS_HISTORY = 50
