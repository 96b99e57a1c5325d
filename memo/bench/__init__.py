"""`python -m memo.bench`: the training loop's throughput, overhead, start-up and precision."""
