from setuptools import find_packages, setup

SERVE = ["fastapi>=0.110", "uvicorn>=0.29", "prometheus-client>=0.20", "ray[serve]>=2.9"]

setup(
    name="mindbark",
    version="0.1.0",
    description="Suno's Bark text-to-audio model in MindSpore",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",  # `X | None` annotations are evaluated at definition
    packages=find_packages(include=["mindbark", "mindbark.*"]),
    package_data={"mindbark": ["presets/**/*.npz", "presets/LICENSE", "presets/README.md", "kernels/*.cc",
                             "kernels/*.h"]},
    install_requires=[
        "mindspore==2.10.0",
        "numpy<2",  # MindSpore 2.10 fails at run time with numpy 2
        "tokenizers>=0.19",
        "safetensors>=0.4",
        "scipy>=1.10",
        "soundfile>=0.12",
        "soxr>=0.3",  # resampling recordings that voices are made from
        "psutil>=5.9",
        "tqdm>=4.60",
    ],
    entry_points={"console_scripts": ["mindbark = mindbark.cli:main"]},
    extras_require={
        "hub": ["huggingface_hub>=0.34"],  # its `hf` command is what the offline message names
        # the PyTorch reference: conversion of .bin files, parity tests and the benchmark
        "torch": ["torch==2.13.0", "transformers==5.23.0"],
        "bench": ["torch==2.13.0", "transformers==5.23.0", "matplotlib>=3.7"],
        # `mindbark serve`: the HTTP API, its metrics, and Ray Serve for scale-out
        "serve": SERVE,
        # httpx is the real HTTP client of the serve tests; pytest-xdist runs the suite on both cores
        "test": ["pytest>=8", "pytest-xdist>=3.5", "torch==2.13.0", "transformers==5.23.0", "matplotlib>=3.7",
                 "import-linter>=2.1", "httpx>=0.27", *SERVE],
    },
)
