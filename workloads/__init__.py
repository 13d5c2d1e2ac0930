"""Built-in workloads, registered through the `bench.workloads` entry-point group like any plug-in."""
