"""`opsgate`: serve, check, audit, policy, keys (and approvals, demo where those capabilities exist)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opsgate.config import ConfigError, Settings, config_path_from_env, load_settings
from opsgate.policy.decision import PolicyError


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


# C0/C1 controls, DEL, and the Unicode line/paragraph separators and bidi overrides: on a terminal these
# can end a line, move the cursor or reorder text, so a field holding them could forge an audit line.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(value: object) -> str:
    """`value` as text with every control character escaped (`\\n`, `\\x1b`): one field, one line."""

    def escape(m: re.Match[str]) -> str:
        ch = m.group(0)
        return _ESCAPES.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")

    return _UNPRINTABLE.sub(escape, str(value))


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


# -- serve ---------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    with ExitStack() as stack:
        return _serve(args, stack)


def _serve(args: argparse.Namespace, stack: Any) -> int:
    from opsgate.launch import DeferredApp, check_names, resolve_names, validate_sections

    names = args.capabilities or ["all"]
    default_world = args.config is None and config_path_from_env() is None
    settings = load_settings(None) if default_world else _settings(args)
    if args.host:
        settings.http.host = args.host
    if args.port:
        settings.http.port = args.port
    http = args.transport == "http"
    if http and settings.http.require_auth and not settings.http.api_keys and not args.allow_no_keys:
        print(
            "opsgate: hosted mode requires authentication and no API keys are configured; add [[http.api_keys]] "
            "(see `opsgate keys new`) or pass --allow-no-keys to serve only unauthenticated denials",
            file=sys.stderr,
        )
        return 2
    # what would stop the server is found now, not at the first call: its policy data and config sections
    check_policy_data(settings)
    check_names(names)  # also with no config: an unknown name would otherwise fail only at the first request
    if not default_world:
        validate_sections(settings, resolve_names(names))

    def build() -> Any:
        from opsgate.server import build_app

        built = settings
        if default_world:
            # no configuration at all: serve the sandbox's default scenario, one world behind every backend
            from opsgate.sandbox.compose import default_world_sections

            built = load_settings(None, **default_world_sections(stack))
            built.http, built.state_dir = settings.http, settings.state_dir
        return build_app(built, names, http=http)

    if not http:
        # a stdio client shows the server's stderr in its log: keep the backends' request lines out of it
        for name in ("httpx", "httpcore", "kubernetes", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # answer `initialize` at once; the gate, the world and the capabilities are built on first use;
        # every malformed JSON-RPC line gets an error answer (opsgate.stdio)
        import anyio

        from opsgate.stdio import serve_stdio

        anyio.run(serve_stdio, DeferredApp(build).server)
        return 0
    from opsgate.audit import AuditError
    from opsgate.server import http_app
    from opsgate.state import StateUnavailable

    try:
        app = build()
    except (AuditError, StateUnavailable) as exc:
        # a trail missing its last exported checkpoint, or a state store that is down: refuse to start
        print(f"opsgate: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from opsgate.http_guard import guarded_protocol

    uvicorn.run(
        http_app(app, settings),
        host=settings.http.host,
        port=settings.http.port,
        log_level="warning",
        http=guarded_protocol(settings.http.max_connections, settings.http.header_timeout_s),
    )
    return 0


# -- check ---------------------------------------------------------------------------------------


def check_policy_data(settings: Settings) -> str:
    """Validate the local policy data against its published schema (raises PolicyError naming the entry).

    The embedded engine refuses to start on data that fails this; with OPA the data lives in OPA's
    bundle, so the local policy folder is checked when it has a data file.
    """
    from opsgate.policy.data_schema import SCHEMA_FILE_NAME
    from opsgate.policy.embedded import DATA_FILE_NAMES, load_policy_data

    policy = settings.policy
    if policy.engine == "opa" and not any((policy.dir / name).is_file() for name in DATA_FILE_NAMES):
        return f"not checked (engine opa, no data file in {policy.dir}; check the bundle against {SCHEMA_FILE_NAME})"
    config = load_policy_data(policy.dir, policy.data)["opsgate_config"]
    return (
        f"ok ({len(config.get('freeze_windows', []))} freeze window(s), {len(config['budgets'])} budget(s); "
        f"matches {SCHEMA_FILE_NAME})"
    )


def cmd_check(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    with ExitStack() as stack:
        return _check(args, stack)


def _check(args: argparse.Namespace, stack: Any) -> int:
    from opsgate.server import build_app

    settings = _settings(args)
    ok = True
    print(f"config: ok (audit at {settings.audit_file}, policy engine {settings.policy.engine})")
    if args.config is None and config_path_from_env() is None:
        # no configuration at all: check what `opsgate serve` would serve, the sandbox's default scenario
        from opsgate.sandbox.compose import default_world_sections

        logging.getLogger("httpx").setLevel(logging.WARNING)  # the probes' request lines are not results
        state_dir, http = settings.state_dir, settings.http
        settings = load_settings(None, **default_world_sections(stack))
        settings.http, settings.state_dir = http, state_dir
        print("config: none given, so the sandbox's default scenario (what `opsgate serve` serves with no config)")
    try:
        print(f"policy data: {check_policy_data(settings)}")
    except PolicyError as exc:
        print(f"FAIL: {exc}")
        return 1
    try:
        app = build_app(settings, args.capabilities or ["all"])
    except Exception as exc:
        print(f"FAIL: {exc}")
        return 1
    print(f"policy: {app.gate.engine.name} revision {app.gate.engine.revision}")
    report = app.gate.audit.verify()
    probed = asyncio.run(_probe_backends(app))
    for capability in app.capabilities:
        tools = ", ".join(c.name for c in capability.contracts)
        print(f"capability {capability.name}: {tools}")
        for backend, (reachable, detail) in probed[capability.name].items():
            print(f"  backend {backend}: {'ok' if reachable else 'FAIL'} ({detail})")
            ok = ok and reachable
        if not capability.probes:
            print("  backend: not probed (this capability declares no probe)")
    from opsgate import approvals_cli

    approver_lines, approvers_ok = approvals_cli.check_lines(settings)
    print("\n".join(approver_lines))
    ok = ok and approvers_ok
    print(f"audit: {report.records} records, chain {'intact' if report.ok else 'BROKEN'}")
    ok = ok and report.ok
    return 0 if ok else 1


PROBE_TIMEOUT_S = 15.0


async def _probe_backends(app: Any) -> dict[str, dict[str, tuple[bool, str]]]:
    """Each capability's backends, each with one cheap real request; then the app is closed."""
    from opsgate.contracts import BackendUnavailable, ToolError

    results: dict[str, dict[str, tuple[bool, str]]] = {}
    try:
        for capability in app.capabilities:
            results[capability.name] = {}
            for backend, probe in capability.probes.items():
                try:
                    async with asyncio.timeout(PROBE_TIMEOUT_S):
                        detail = await probe()
                    results[capability.name][backend] = (True, detail)
                except BackendUnavailable as exc:
                    results[capability.name][backend] = (False, f"unreachable: {exc}")
                except ToolError as exc:
                    results[capability.name][backend] = (True, f"answered: {exc}")
                except TimeoutError:
                    results[capability.name][backend] = (False, f"no answer within {PROBE_TIMEOUT_S:g}s")
                except Exception as exc:
                    results[capability.name][backend] = (False, f"{type(exc).__name__}: {exc}")
    finally:
        await app.aclose()
    return results


# -- audit ---------------------------------------------------------------------------------------


def cmd_audit(args: argparse.Namespace) -> int:
    from opsgate.audit import AuditError, AuditLog
    from opsgate.audit_keys import JsonlSink
    from opsgate.state import audit_checkpoints, is_postgres, open_audit

    settings = _settings(args)
    try:
        if args.file:
            path = Path(args.file)
            if not path.exists():
                print(f"opsgate: no audit trail at {path}", file=sys.stderr)
                return 1
            if settings.audit_path is None and path.name == "audit.db":
                # the trail of another state directory: its key and export sit beside that directory
                settings = settings.model_copy(update={"state_dir": path.parent})
            log = AuditLog(path, checkpoints=audit_checkpoints(settings, create_key=False), check_anchor=False)
        else:
            if not is_postgres(settings.state_url) and not settings.audit_file.exists():
                print(f"opsgate: no audit trail at {settings.audit_file}", file=sys.stderr)
                return 1
            log = open_audit(settings, check_anchor=False, create_key=args.audit_cmd == "reset")
    except AuditError as exc:
        print(f"opsgate: {exc}", file=sys.stderr)
        return 2
    where = log.store.location
    try:
        if args.audit_cmd == "verify":
            exports = None
            if getattr(args, "export", None):
                exports = [JsonlSink(Path(p)) for p in args.export]
            report = log.verify(exports)
            for warning in report.warnings:
                print(f"WARNING: {warning}")
            if report.ok:
                print(
                    f"audit trail {where}: {report.records} records, hash chain intact; "
                    f"{report.checkpoints} stored and {report.exported} exported checkpoint(s) verified"
                )
                return 0
            print(f"audit trail {where}: TAMPERED ({len(report.problems)} problem(s))")
            for problem in report.problems:
                print(f"  - {problem}")
            return 1
        if args.audit_cmd == "reset":
            try:
                entry = log.reset(args.reason, by=os.environ.get("USER", "unknown"))
            except AuditError as exc:
                print(f"opsgate: {exc}", file=sys.stderr)
                return 2
            print(f"recorded a chain reset in the export for chain {entry['chain']}: {args.reason}")
            return 0
        for stored in log.tail(args.n):
            r = stored.record
            if args.json:
                print(json.dumps({"seq": stored.seq, **r}, sort_keys=True, default=str))
                continue
            decision = r.get("decision") or {}
            # every field is escaped: a tool name or error holding newlines or ANSI codes stays on its line
            print(
                f"{stored.seq:>6} {printable(r.get('ts', ''))} {printable(r.get('tool', '')):<22} "
                f"{printable(r.get('outcome', '')):<16} {printable((r.get('caller') or {}).get('subject', ''))} "
                f"{printable(decision.get('rule') or '')} {printable(r.get('error') or '')}"
            )
        return 0
    finally:
        if log.cp is not None and log.cp.sink is not None:
            log.cp.sink.close()
        log.store.close()


# -- policy --------------------------------------------------------------------------------------


def cmd_policy(args: argparse.Namespace) -> int:
    from opsgate.policy.testing import eval_decision, run_policy_tests

    settings = _settings(args)
    policy_dir = Path(args.dir) if args.dir else settings.policy.dir
    if args.policy_cmd == "test":
        try:
            report = run_policy_tests(policy_dir, settings.policy.data)
        except PolicyError as exc:
            print(f"opsgate: {exc}", file=sys.stderr)
            return 2
        for r in report.results:
            status = "PASS" if r.passed else "FAIL"
            print(f"{status} {r.qualified_name} ({r.file}){'' if r.passed else ': ' + (r.error or '')}")
        print(report.summary())
        return 0 if report.ok else 1
    try:
        doc = json.loads(Path(args.input).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"opsgate: cannot read policy input {args.input}: {exc}", file=sys.stderr)
        return 2
    try:
        _print_json(eval_decision(policy_dir, doc))
    except PolicyError as exc:
        print(f"opsgate: {exc}", file=sys.stderr)
        return 2
    return 0


# -- keys ----------------------------------------------------------------------------------------


def cmd_keys(args: argparse.Namespace) -> int:
    from opsgate.http_auth import hash_key, new_key

    if args.keys_cmd == "hash":
        print(hash_key(args.secret))
        return 0
    if args.keys_cmd in ("add", "revoke", "list"):
        return _stored_keys(args)
    secret, digest = new_key()
    print(f"key (give to the client, shown once): {secret}")
    print("config:")
    print("[[http.api_keys]]")
    print(f'sha256 = "{digest}"')
    print(f'subject = "{args.subject}"')
    print(f"roles = {json.dumps(args.role or ['responder'])}")
    return 0


def _stored_keys(args: argparse.Namespace) -> int:
    """API keys kept in the shared state (every replica sees an added or revoked key at once)."""
    import time

    from opsgate.http_auth import new_key
    from opsgate.state import StateUnavailable, open_state

    settings = _settings(args)
    try:
        state = open_state(settings)
    except StateUnavailable as exc:
        print(f"opsgate: {exc}", file=sys.stderr)
        return 2
    try:
        if args.keys_cmd == "add":
            secret, digest = new_key()
            state.api_keys.add_key(digest, args.subject, args.role or ["responder"], time.time())
            print(f"key (give to the client, shown once): {secret}")
            print(f"stored ({state.backend}) for {args.subject}; revoke with: opsgate keys revoke {digest}")
            return 0
        if args.keys_cmd == "revoke":
            if state.api_keys.revoke_key(args.sha256, time.time()):
                print(f"revoked {args.sha256}")
                return 0
            print(f"opsgate: no active stored key with sha256 {args.sha256}", file=sys.stderr)
            return 1
        for key in state.api_keys.list_keys():
            status = "revoked" if key.revoked_at is not None else "active"
            print(f"{key.sha256} {status:<8} {key.subject} {','.join(key.roles)}")
        return 0
    finally:
        state.close()


# -- parser --------------------------------------------------------------------------------------


def build_parser(*, serving: bool = False) -> argparse.ArgumentParser:
    """The whole CLI; `serving` leaves out the commands that live beside what they drive (approvals, demo,
    eval), whose modules a server that must answer `initialize` quickly has no use for."""
    parser = argparse.ArgumentParser(prog="opsgate", description="Policy-gated MCP servers for SRE agents")
    parser.add_argument("--config", type=Path, default=None, help="TOML config file (default: $OPSGATE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve capabilities over MCP")
    serve.add_argument(
        "capabilities", nargs="*", help="runbooks, logs, metrics, rollback, workloads, alerts, triage or all (default)"
    )
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--allow-no-keys", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check", help="check configuration, policy, backends and the audit chain")
    check.add_argument("capabilities", nargs="*")
    check.set_defaults(func=cmd_check)

    audit = sub.add_parser("audit", help="read and verify the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_cmd", required=True)
    tail = audit_sub.add_parser("tail", help="the newest records")
    tail.add_argument("-n", type=int, default=20)
    tail.add_argument("--json", action="store_true")
    verify = audit_sub.add_parser("verify", help="recompute the hash chain and check signed checkpoints")
    verify.add_argument(
        "--export", action="append", help="exported checkpoints (JSONL) to check; default: the configured export"
    )
    reset = audit_sub.add_parser("reset", help="record in the export that a new chain starts (after a lost trail)")
    reset.add_argument("--reason", required=True)
    for p in (tail, verify, reset):
        p.add_argument("--file", default=None, help="audit database (default: from config)")
    audit.set_defaults(func=cmd_audit)

    policy = sub.add_parser("policy", help="test and evaluate the Rego policies")
    policy_sub = policy.add_subparsers(dest="policy_cmd", required=True)
    ptest = policy_sub.add_parser("test", help="run the policies' _test.rego unit tests")
    peval = policy_sub.add_parser("eval", help="print the decision for an input document")
    peval.add_argument("--input", required=True, help="JSON policy input document")
    for p in (ptest, peval):
        p.add_argument("--dir", default=None, help="policy folder (default: from config)")
    policy.set_defaults(func=cmd_policy)

    keys = sub.add_parser("keys", help="API keys for hosted mode")
    keys_sub = keys.add_subparsers(dest="keys_cmd", required=True)
    knew = keys_sub.add_parser("new", help="make a key and print its config entry")
    knew.add_argument("--subject", required=True)
    knew.add_argument("--role", action="append")
    khash = keys_sub.add_parser("hash", help="hash an existing key")
    khash.add_argument("secret")
    kadd = keys_sub.add_parser("add", help="make a key and store its hash in the shared state (no config edit)")
    kadd.add_argument("--subject", required=True)
    kadd.add_argument("--role", action="append")
    krevoke = keys_sub.add_parser("revoke", help="revoke a key stored in the shared state")
    krevoke.add_argument("sha256")
    keys_sub.add_parser("list", help="keys stored in the shared state")
    keys.set_defaults(func=cmd_keys)

    if not serving:
        # commands that live beside what they drive: approvals, and the sandbox (demo, sandbox), eval
        from opsgate import approvals_cli
        from opsgate.evaluation import cli as eval_cli
        from opsgate.sandbox import demo_cli

        approvals_cli.register(sub)
        demo_cli.register(sub)
        eval_cli.register(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names (the first word that is not a global option or its value)."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(serving=_command(argv) == "serve")
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (ConfigError, PolicyError) as exc:
        print(f"opsgate: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
