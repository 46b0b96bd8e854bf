"""`make demo`: scripted demonstrations on the stand-in, the pipeline's stages and its report."""
