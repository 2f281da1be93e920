"""Test-only code shared by the test folders and the benchmarks: contract sets that exercise the gate
(`testkit`, `conformance_fixtures`), loopback servers, the Kubernetes API emulation fixtures, Azure test
credentials and the log-parser grouping accuracy. Nothing here ships in the `opsgate` package."""
