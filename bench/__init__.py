"""pocketbert's benchmark harness: models x runtimes x workloads -> one JSON record per run -> reports.

Pipeline (bench.harness.run_bench): resolve bundles (export on demand) -> tokenize the workload once
-> run each (model, runtime, precision, shape) in a fresh worker subprocess on a Device -> write one
record per run -> render the report (bench.report).
"""
