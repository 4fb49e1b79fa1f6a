"""Benchmarks that time the project's path and a reference path in the same run and report the ratio.

Each module registers one `cifar-lab bench KIND` subcommand with `register(bench_subparsers)`.
"""
BENCH_MODULES = ["data", "train", "imagenet", "ast"]
