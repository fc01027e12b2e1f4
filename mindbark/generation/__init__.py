"""Bark's generation, one module per stage: semantic -> coarse -> fine (-> codec, in the pipeline)."""
