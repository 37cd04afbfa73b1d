"""pocketbert's benchmark harness: models x runtimes x workloads -> one JSON record per run -> reports.

Pipeline (bench.harness.run_bench): plan (workloads and given bundles read once) -> resolve bundles
(export on demand, each manifest read once) while the workload is tokenized -> run each (model,
runtime, precision, shape) in a fresh worker subprocess on a Device (a WorkerResult) -> build and
write one record per run (statistics derived once and stored) -> render the report (bench.report).
"""
