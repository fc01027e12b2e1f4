"""mindbark against the PyTorch reference (`transformers`' BarkModel): `python benchmarks/bench_vs_torch.py`."""
