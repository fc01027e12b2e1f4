"""Bark's four networks: causal GPT (semantic, coarse), fine GPT, EnCodec decoder, and their container."""
