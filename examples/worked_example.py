"""
The worked backpropagation example
==================================

The classic hand-worked example, step by step, as the fastmlp engine
computes it (the first part of ``fastmlp demo``).
"""

from fastmlp._demo import run_worked_example

if __name__ == "__main__":
    run_worked_example()
