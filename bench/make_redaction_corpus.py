# ruff: noqa: E501  (log line templates read best unwrapped)
"""Generate the labelled redaction corpus: log lines with fake secrets, and lines without any.

    python bench/make_redaction_corpus.py [--seed 20240611] [--out tests/data/redaction_corpus.jsonl]

Every secret is random, of the real shape of its kind (never a real credential). Each JSON line is
`{"id", "format", "text", "secrets": [{"start", "end", "kind", "value"}]}` where `text[start:end] == value`
is the part that must be masked (the password in a URL, the value after `password=`, the body of a PEM
block). Lines without secrets carry things that only look like secrets and must stay readable: git SHAs,
UUIDs, trace and request ids, digests, base64 payloads, URLs without passwords, 'password reset' messages,
token counts.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "data" / "redaction_corpus.jsonl"

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
BASE32 = string.ascii_uppercase + "234567"
HEX = "0123456789abcdef"


@dataclass(frozen=True)
class S:
    """A secret part of a line: `value` must be masked; `kind` is the mask kind expected."""

    kind: str
    value: str


Part = str | S


class Fake:
    """Random values of real shapes, from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def pick(self, *options: str) -> str:
        return self.r.choice(options)

    def b64(self, nbytes: int, url: bool = False) -> str:
        raw = self.r.randbytes(nbytes)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=") if url else base64.b64encode(raw).decode()

    def hexs(self, n: int) -> str:
        return self.chars(HEX, n)

    def uuid(self) -> str:
        h = self.hexs(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{self.pick('8', '9', 'a', 'b')}{h[17:20]}-{h[20:]}"

    def password(self) -> str:
        return (
            self.chars(ALNUM, self.r.randint(10, 16))
            + self.pick("!", "#", "%", "^", "*", "")
            + self.chars(string.digits, 2)
        )

    def user(self) -> str:
        return self.pick("app", "svc_orders", "reporting", "admin", "deploy", "grafana", "etl_user", "billing")

    def host(self) -> str:
        return self.pick(
            "db-primary.internal", "orders-db.prod.svc.cluster.local", "10.12.4.17", "redis-0.redis",
            "mq.example.net", "pg.eu-west-1.rds.amazonaws.com", "cache.internal.example.com",
        )  # fmt: skip

    def ts(self) -> str:
        return (
            f"2024-0{self.r.randint(1, 9)}-{self.r.randint(10, 28)}T{self.r.randint(10, 23)}:"
            f"{self.r.randint(10, 59)}:{self.r.randint(10, 59)}.{self.r.randint(100, 999)}Z"
        )

    def ip(self) -> str:
        return f"10.{self.r.randint(0, 255)}.{self.r.randint(0, 255)}.{self.r.randint(1, 254)}"

    def pod(self) -> str:
        return f"{self.pick('api', 'checkout', 'worker', 'ingest', 'web')}-{self.hexs(9)}-{self.chars(string.ascii_lowercase + string.digits, 5)}"

    # -- secrets of each kind ------------------------------------------------------------------

    def jwt(self) -> str:
        header = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "typ": "JWT", "kid": self.hexs(8)}).encode())
        claims = {
            "sub": self.uuid(),
            "iss": "https://login.example.com",
            "exp": self.r.randint(1_700_000_000, 1_800_000_000),
        }
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode())
        return f"{header.decode().rstrip('=')}.{payload.decode().rstrip('=')}.{self.b64(self.r.choice((32, 64, 256)), url=True)}"

    def opaque_token(self) -> str:
        return self.chars(ALNUM, self.r.randint(28, 48))

    def aws_key_id(self) -> str:
        return self.pick("AKIA", "ASIA") + self.chars(BASE32, 16)

    def aws_secret(self) -> str:
        return self.chars(B64, 40)

    def azure_storage_key(self) -> str:
        return base64.b64encode(self.r.randbytes(64)).decode()

    def azure_sig(self) -> str:
        return (
            base64.b64encode(self.r.randbytes(32)).decode().replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        )

    def azure_client_secret(self) -> str:
        return self.chars(ALNUM, 3) + self.chars(string.digits, 1) + "Q~" + self.chars(ALNUM + "_~.-", 34)

    def gcp_api_key(self) -> str:
        return "AIza" + self.chars(ALNUM + "_-", 35)

    def pem_body(self, lines: int, sep: str) -> str:
        raw = base64.b64encode(self.r.randbytes(48 * lines)).decode()
        return sep.join(raw[i : i + 64] for i in range(0, len(raw), 64))

    def github(self) -> str:
        if self.r.random() < 0.3:
            return "github_pat_" + self.chars(ALNUM, 22) + "_" + self.chars(ALNUM, 59)
        return self.pick("ghp_", "gho_", "ghs_", "ghu_") + self.chars(ALNUM, 36)

    def gitlab(self) -> str:
        return "glpat-" + self.chars(ALNUM + "_-", 20)

    def slack(self) -> str:
        return f"{self.pick('xoxb', 'xoxp', 'xoxa')}-{self.chars(string.digits, 12)}-{self.chars(string.digits, 13)}-{self.chars(ALNUM, 24)}"

    def slack_hook_path(self) -> str:
        return f"T{self.chars(BASE32, 8)}/B{self.chars(BASE32, 10)}/{self.chars(ALNUM, 24)}"

    def stripe(self) -> str:
        return self.pick("sk_live_", "rk_live_") + self.chars(ALNUM, self.r.choice((24, 34, 99)))

    def openai(self) -> str:
        if self.r.random() < 0.5:
            return "sk-proj-" + self.chars(ALNUM + "_-", 74) + "T3BlbkFJ" + self.chars(ALNUM + "_-", 74)
        return "sk-" + self.chars(ALNUM, 20) + "T3BlbkFJ" + self.chars(ALNUM, 20)

    def anthropic(self) -> str:
        return "sk-ant-api03-" + self.chars(ALNUM + "_-", 93) + "AA"

    def high_entropy(self) -> str:
        while True:
            v = self.chars(ALNUM + "+/", self.r.randint(32, 44))
            if any(c.isupper() for c in v) and any(c.islower() for c in v) and any(c.isdigit() for c in v):
                return v


# -- line templates: each returns the parts of one line ---------------------------------------------

Template = Callable[[Fake], list[Part]]


def _json_line(f: Fake, fields: list[tuple[str, Part]], level: str = "INFO") -> list[Part]:
    parts: list[Part] = [f'{{"ts":"{f.ts()}","level":"{level}"']
    for key, value in fields:
        parts.append(f',"{key}":"')
        parts.append(value)
        parts.append('"')
    parts.append("}")
    return parts


def _json_with(f: Fake, msg: str, key: str, value: list[Part]) -> list[Part]:
    """A JSON log line whose `key` holds a string made of several parts."""
    return [f'{{"ts":"{f.ts()}","level":"INFO","msg":"{msg}","{key}":"', *value, '"}']


def _logfmt(f: Fake, level: str, msg: str, fields: list[tuple[str, Part]]) -> list[Part]:
    parts: list[Part] = [f'time={f.ts()} level={level} msg="{msg}"']
    for key, value in fields:
        parts.append(f" {key}=")
        parts.append(value)
    return parts


def _nginx(f: Fake, path: list[Part], status: int = 200, extra_header: list[Part] | None = None) -> list[Part]:
    parts: list[Part] = [f'{f.ip()} - - [12/Mar/2024:{f.r.randint(10, 23)}:14:{f.r.randint(10, 59)} +0000] "GET ']
    parts.extend(path)
    parts.append(f' HTTP/1.1" {status} {f.r.randint(200, 90000)} "-" "curl/8.5.0"')
    if extra_header:
        parts.append(' "')
        parts.extend(extra_header)
        parts.append('"')
    return parts


def _java_trace(f: Fake, message: list[Part]) -> list[Part]:
    parts: list[Part] = [f"{f.ts()} ERROR [main] o.s.b.SpringApplication - Application run failed\n"]
    parts.extend(message)
    parts.append(
        "\n\tat org.postgresql.core.v3.ConnectionFactoryImpl.openConnectionImpl(ConnectionFactoryImpl.java:319)"
        "\n\tat org.postgresql.Driver.connect(Driver.java:274)\n\tat com.zaxxer.hikari.pool.PoolBase.newConnection("
        "PoolBase.java:364)\n\t... 42 common frames omitted"
    )
    return parts


def _py_trace(f: Fake, message: list[Part]) -> list[Part]:
    parts: list[Part] = [
        'Traceback (most recent call last):\n  File "/app/worker.py", line 88, in run\n    client.connect()\n'
        '  File "/usr/lib/python3.11/site-packages/redis/connection.py", line 707, in connect\n    raise '
    ]
    parts.extend(message)
    return parts


def _k8s_event(f: Fake, message: list[Part]) -> list[Part]:
    parts: list[Part] = [
        f"{f.r.randint(2, 59)}m  Warning  Failed  pod/{f.pod()}  ",
    ]
    parts.extend(message)
    return parts


def positives() -> dict[str, list[Template]]:
    """Kind -> templates that embed one (or more) secrets of it."""

    def bearer(f: Fake) -> list[Part]:
        tok = S("bearer", f.opaque_token())
        return f.r.choice(
            [
                [f'{{"ts":"{f.ts()}","msg":"outbound request","headers":{{"Authorization":"Bearer ', tok, '"}}'],
                [f'time={f.ts()} level=debug msg="calling upstream" header="Authorization: Bearer ', tok, '"'],
                [
                    "> GET /v1/orders HTTP/1.1\n> Host: api.partner.example\n> Authorization: Bearer ",
                    tok,
                    "\n> Accept: */*",
                ],
                [f"{f.ts()} WARN  http.client - 401 for token Bearer ", tok, " (expired?)"],
            ]
        )

    def jwt(f: Fake) -> list[Part]:
        tok = S("jwt", f.jwt())
        return f.r.choice(
            [
                _json_line(f, [("msg", "token issued"), ("access_token", tok)]),
                [f"{f.ts()} DEBUG auth.middleware validating id_token ", tok, " for client web"],
                _nginx(f, ["/oauth/callback?state=", f.hexs(16), "&id_token=", tok]),
                [f"{f.ts()} INFO  Authorization: Bearer ", tok],
            ]
        )

    def aws(f: Fake) -> list[Part]:
        kid = S("aws_access_key_id", f.aws_key_id())
        sec = S("aws_secret_key", f.aws_secret())
        return f.r.choice(
            [
                ["[default]\naws_access_key_id = ", kid, "\naws_secret_access_key = ", sec],
                _json_line(f, [("msg", "sts assume-role ok"), ("AccessKeyId", kid), ("SecretAccessKey", sec)]),
                ["export AWS_ACCESS_KEY_ID=", kid, " AWS_SECRET_ACCESS_KEY=", sec],
                [f"{f.ts()} botocore.credentials - Found credentials in environment variables: ", kid],
                _logfmt(f, "error", "s3 upload failed", [("key_id", kid), ("bucket", "prod-artifacts")]),
            ]
        )

    def azure_storage(f: Fake) -> list[Part]:
        key = S("azure_key", f.azure_storage_key())
        account = f.pick("prodlogs", "stappdata01", "backupseu")
        return f.r.choice(
            [
                [
                    f"{f.ts()} ERROR BlobClient failed with connection string DefaultEndpointsProtocol=https;AccountName={account};AccountKey=",
                    key,
                    ";EndpointSuffix=core.windows.net",
                ],
                _json_with(
                    f,
                    "config loaded",
                    "AZURE_STORAGE_CONNECTION_STRING",
                    [
                        f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey=",
                        key,
                        ";EndpointSuffix=core.windows.net",
                    ],
                ),
                [
                    "Endpoint=sb://orders-bus.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=",
                    S("azure_key", f.b64(32)),
                ],
            ]
        )

    def azure_sas(f: Fake) -> list[Part]:
        sig = S("azure_sas", f.azure_sig())
        url: list[Part] = [
            f"https://{f.pick('prodlogs', 'stapp')}.blob.core.windows.net/exports/{f.uuid()}.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2024-03-12T18:00:00Z&st=2024-03-12T10:00:00Z&spr=https&sig=",
            sig,
        ]
        return f.r.choice(
            [
                [f"{f.ts()} INFO export ready at ", *url],
                _json_with(f, "download", "url", url),
                [f"{f.ts()} WARN  azure.storage.blob - Request URL: '", *url, "'"],
            ]
        )

    def azure_client_secret(f: Fake) -> list[Part]:
        val = f.azure_client_secret()
        return f.r.choice(
            [
                [
                    f"AZURE_TENANT_ID={f.uuid()} AZURE_CLIENT_ID={f.uuid()} AZURE_CLIENT_SECRET=",
                    S("client_secret", val),
                ],
                _json_line(f, [("msg", "msal confidential client"), ("clientSecret", S("client_secret", val))]),
                [
                    f"{f.ts()} DEBUG msal - POST https://login.microsoftonline.com/{f.uuid()}/oauth2/v2.0/token body: grant_type=client_credentials&client_id={f.uuid()}&client_secret=",
                    S("client_secret", val),
                    "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
                ],
                [f"{f.ts()} WARN  leaked value in args: --secret ", S("azure_client_secret", val), " --tenant contoso"],
            ]
        )

    def gcp_api_key(f: Fake) -> list[Part]:
        key = S("gcp_api_key", f.gcp_api_key())
        return f.r.choice(
            [
                _nginx(f, ["/maps/api/geocode/json?address=Berlin&key=", key]),
                [
                    f"{f.ts()} ERROR googleapiclient - HttpError 403 when requesting https://translation.googleapis.com/language/translate/v2?key=",
                    key,
                    "&alt=json",
                ],
                _json_line(f, [("msg", "firebase init"), ("apiKey", key)]),
            ]
        )

    def gcp_service_account(f: Fake) -> list[Part]:
        body = S("private_key", "\\n" + f.pem_body(6, "\\n") + "\\n")
        return [
            '{"type": "service_account", "project_id": "orders-prod-4821", "private_key_id": "',
            f.hexs(40),
            '", "private_key": "-----BEGIN PRIVATE KEY-----',
            body,
            '-----END PRIVATE KEY-----\\n", "client_email": "deployer@orders-prod-4821.iam.gserviceaccount.com", "client_id": "',
            f.chars(string.digits, 21),
            '"}',
        ]

    def pem(f: Fake) -> list[Part]:
        label = f.pick("RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED ")
        body = S("private_key", "\n" + f.pem_body(f.r.randint(3, 10), "\n") + "\n")
        return f.r.choice(
            [
                [
                    f"{f.ts()} DEBUG tls - loaded key material:\n-----BEGIN {label}PRIVATE KEY-----",
                    body,
                    f"-----END {label}PRIVATE KEY-----\n",
                ],
                [f"  tls.key: |\n    -----BEGIN {label}PRIVATE KEY-----", body, f"-----END {label}PRIVATE KEY-----"],
            ]
        )

    def github(f: Fake) -> list[Part]:
        tok = S("github_token", f.github())
        return f.r.choice(
            [
                [
                    f"{f.ts()} INFO  git clone https://x-access-token:",
                    S("password", tok.value),
                    "@github.com/acme/orders.git",
                ],
                [f"{f.ts()} DEBUG runner env GH_TOKEN=", tok],
                _json_line(f, [("msg", "webhook delivery"), ("installation_token", tok)]),
                ["remote: Invalid username or password. token ", tok, " lacks scope repo"],
            ]
        )

    def gitlab(f: Fake) -> list[Part]:
        tok = S("gitlab_token", f.gitlab())
        return f.r.choice(
            [
                [
                    f'{f.ts()} ERROR ci - curl --header "PRIVATE-TOKEN: ',
                    tok,
                    '" https://gitlab.example.com/api/v4/projects',
                ],
                _logfmt(f, "info", "registry login", [("user", "ci-bot"), ("pat", tok)]),
            ]
        )

    def slack(f: Fake) -> list[Part]:
        if f.r.random() < 0.5:
            tok = S("slack_token", f.slack())
            return f.r.choice(
                [
                    [f"{f.ts()} ERROR slack_sdk - not_authed for token ", tok],
                    _json_line(f, [("msg", "notifier init"), ("bot", tok)]),
                ]
            )
        hook = S("slack_webhook", f.slack_hook_path())
        return f.r.choice(
            [
                [
                    f"{f.ts()} WARN  alertmanager notify retry url=https://hooks.slack.com/services/",
                    hook,
                    " status=500",
                ],
                _json_with(f, "posting", "webhook", ["https://hooks.slack.com/services/", hook]),
            ]
        )

    def stripe(f: Fake) -> list[Part]:
        key = S("stripe_key", f.stripe())
        return f.r.choice(
            [
                [f"{f.ts()} ERROR stripe - Invalid API Key provided: ", key],
                _logfmt(f, "debug", "payments client", [("key", key), ("region", "eu")]),
            ]
        )

    def openai(f: Fake) -> list[Part]:
        key = S("openai_key", f.openai())
        return f.r.choice(
            [
                [
                    f"{f.ts()} ERROR openai - Incorrect API key provided: ",
                    key,
                    ". You can find your API key at https://platform.openai.com/account/api-keys.",
                ],
                _json_line(f, [("msg", "llm client"), ("OPENAI_API_KEY", key)]),
            ]
        )

    def anthropic(f: Fake) -> list[Part]:
        key = S("anthropic_key", f.anthropic())
        return f.r.choice(
            [
                [f"{f.ts()} DEBUG anthropic - headers x-api-key: ", key],
                [f"{f.ts()} WARN  config dump llm.key ", key, " model=claude"],
            ]
        )

    def url_password(f: Fake) -> list[Part]:
        pw = S("password", f.password())
        scheme = f.pick("postgres", "postgresql", "mysql", "mongodb+srv", "amqp", "redis", "https")
        user = "" if scheme == "redis" else f.user()
        url: list[Part] = [f"{scheme}://{user}:", pw, f"@{f.host()}:5432/orders"]
        return f.r.choice(
            [
                [f"{f.ts()} INFO  db - connecting to ", *url],
                _java_trace(f, ["org.postgresql.util.PSQLException: Connection to ", *url, " refused."]),
                _py_trace(f, ['ConnectionError("Error 111 connecting to ', *url, '. Connection refused.")']),
                _json_with(f, "migration start", "DATABASE_URL", url),
                _k8s_event(f, ["Error: failed to start container: env DATABASE_URL=", *url]),
            ]
        )

    def kv_password(f: Fake) -> list[Part]:
        pw = S("password", f.password())
        return f.r.choice(
            [
                _logfmt(f, "debug", "db config", [("host", f.host()), ("user", f.user()), ("password", pw)]),
                _json_line(f, [("msg", "login attempt"), ("username", f.user()), ("password", pw)]),
                ["spring.datasource.password=", pw],
                ["  POSTGRES_PASSWORD: ", pw],
                [f"{f.ts()} DEBUG  ldap bind dn=cn=svc,dc=example,dc=com passwd=", pw, " timeout=5"],
                [f'{f.ts()} INFO  request body: {{\\"user\\":\\"{f.user()}\\",\\"password\\":\\"', pw, '\\"}'],
                _py_trace(f, ["AuthenticationError(\"bad credentials\", {'user': 'svc', 'password': '", pw, "'})"]),
                _k8s_event(f, ["Error: container args: --db-user=app --db-password=", pw]),
            ]
        )

    def db_conn_string(f: Fake) -> list[Part]:
        pw = S("password", f.password())
        return f.r.choice(
            [
                [
                    f"{f.ts()} ERROR SqlClient - Login failed. Server=tcp:orders-sql.database.windows.net,1433;Initial Catalog=orders;Persist Security Info=False;User ID={f.user()};Password=",
                    pw,
                    ";MultipleActiveResultSets=False;Encrypt=True;",
                ],
                ["Data Source=sql01;Initial Catalog=Billing;User Id=", f.user(), ";Pwd=", pw, ";"],
                _java_trace(
                    f,
                    [
                        f"java.sql.SQLException: Cannot create PoolableConnectionFactory (jdbc:sqlserver://sql01:1433;databaseName=orders;user={f.user()};password=",
                        pw,
                        ")",
                    ],
                ),
            ]
        )

    def kv_secret(f: Fake) -> list[Part]:
        val = f.high_entropy()
        return f.r.choice(
            [
                _logfmt(
                    f, "debug", "oauth client", [("client_id", f.uuid()), ("client_secret", S("client_secret", val))]
                ),
                _json_line(f, [("msg", "app settings"), ("JWT_SECRET", S("secret", val))]),
                ["  secret: ", S("secret", val)],
                [f"{f.ts()} DEBUG webhook verify secret=", S("secret", val), " source=github"],
            ]
        )

    def kv_api_key(f: Fake) -> list[Part]:
        val = f.chars(ALNUM, f.r.randint(24, 40))
        return f.r.choice(
            [
                _nginx(f, ["/v1/metrics?api_key=", S("api_key", val), "&from=now-1h"]),
                _json_line(f, [("msg", "vendor request"), ("x-api-key", S("api_key", val))]),
                [f"{f.ts()} WARN  datadog - apiKey: ", S("api_key", val), " rejected (403)"],
                ['DD_API_KEY="', S("api_key", val), '"'],
            ]
        )

    def kv_token(f: Fake) -> list[Part]:
        val = f.chars(ALNUM + "-_", f.r.randint(24, 40))
        return f.r.choice(
            [
                _nginx(f, ["/api/v2/reset?token=", S("token", val), "&lang=en"]),
                _json_line(f, [("msg", "refresh"), ("refresh_token", S("token", val))]),
                _logfmt(
                    f,
                    "info",
                    "session created",
                    [("user_id", str(f.r.randint(1000, 99999))), ("session_token", S("token", val))],
                ),
                ["VAULT_TOKEN=", S("token", val)],
            ]
        )

    def basic_auth(f: Fake) -> list[Part]:
        cred = S("basic_auth", base64.b64encode(f"{f.user()}:{f.password()}".encode()).decode())
        return f.r.choice(
            [
                ["> GET /metrics HTTP/1.1\n> Host: prometheus.internal\n> Authorization: Basic ", cred],
                _json_with(f, "proxy request", "authorization", ["Basic ", cred]),
                [f"{f.ts()} DEBUG urllib3 - headers={{'Authorization': 'Basic ", cred, "', 'Accept': '*/*'}"],
            ]
        )

    def generic_labelled(f: Fake) -> list[Part]:
        val = S("secret", f.high_entropy())
        return f.r.choice(
            [
                _logfmt(f, "debug", "hmac setup", [("signing_key", val), ("alg", "HS256")]),
                _json_line(f, [("msg", "encryption"), ("encryption_key", val)]),
                ["SESSION_KEY=", val],
                [f"{f.ts()} DEBUG cookie session_key: ", val],
            ]
        )

    return {
        "bearer": [bearer], "jwt": [jwt], "aws": [aws], "azure_storage": [azure_storage], "azure_sas": [azure_sas],
        "azure_client_secret": [azure_client_secret], "gcp_api_key": [gcp_api_key],
        "gcp_service_account": [gcp_service_account], "pem": [pem], "github": [github], "gitlab": [gitlab],
        "slack": [slack], "stripe": [stripe], "openai": [openai], "anthropic": [anthropic],
        "url_password": [url_password], "kv_password": [kv_password], "db_conn_string": [db_conn_string],
        "kv_secret": [kv_secret], "kv_api_key": [kv_api_key], "kv_token": [kv_token], "basic_auth": [basic_auth],
        "generic_labelled": [generic_labelled],
    }  # fmt: skip


def negatives() -> list[Template]:
    """Lines without secrets whose ids, hashes and words only look like secrets."""
    return [
        lambda f: [f"{f.ts()} INFO  deploy - rolled out commit {f.hexs(40)} to prod (previous {f.hexs(40)})"],
        lambda f: [f"HEAD is now at {f.hexs(7)} fix: retry on 503 from payments"],
        lambda f: _json_line(f, [("msg", "request done"), ("request_id", f.uuid()), ("trace_id", f.hexs(32)), ("span_id", f.hexs(16)), ("status", "200")]),
        lambda f: _logfmt(f, "info", "handled", [("req_id", f"req_{f.chars(ALNUM, 24)}"), ("duration_ms", str(f.r.randint(1, 900))), ("trace", f.hexs(32))]),
        lambda f: [f"{f.ts()} INFO  kubelet - Successfully pulled image \"registry.example.com/orders@sha256:{f.hexs(64)}\" in 2.1s"],
        lambda f: _json_line(f, [("msg", "event received"), ("payload", base64.b64encode(json.dumps({"event": "click", "x": f.r.randint(0, 999)}).encode()).decode())]),
        lambda f: _json_line(f, [("msg", "blob stored"), ("content_md5", f.b64(16)), ("etag", f'0x{f.hexs(16).upper()}'), ("size", str(f.r.randint(100, 100000)))]),
        lambda f: _logfmt(f, "info", "password reset email sent", [("user_id", str(f.r.randint(1, 99999))), ("to", f"{f.user()}@example.com")]),
        lambda f: [f"{f.ts()} INFO  auth - Password changed successfully for user_id={f.r.randint(1, 99999)}"],
        lambda f: [f"{f.ts()} WARN  auth - Failed password for invalid user admin from {f.ip()} port {f.r.randint(1024, 65000)} ssh2"],
        lambda f: _logfmt(f, "info", "llm call", [("model", "gpt-4o"), ("prompt_tokens", str(f.r.randint(10, 9000))), ("completion_tokens", str(f.r.randint(10, 900))), ("max_tokens", "4096")]),
        lambda f: _json_line(f, [("msg", "usage"), ("token_count", str(f.r.randint(1, 90000))), ("token_type", "Bearer"), ("expires_in", "3600")]),
        lambda f: [f"{f.ts()} INFO  token count: {f.r.randint(1, 9000)} (limit 128000)"],
        lambda f: _nginx(f, [f"/api/v1/orders?page={f.r.randint(1, 40)}&sort=desc&customer={f.uuid()}"]),
        lambda f: _nginx(f, [f"/static/app.{f.hexs(8)}.js"], 304),
        lambda f: [f"{f.ts()} INFO  http - GET https://api.github.com/repos/acme/orders/commits/{f.hexs(40)} -> 200"],
        lambda f: [f"{f.ts()} DEBUG  connecting to postgres://{f.host()}:5432/orders?sslmode=require"],
        lambda f: _k8s_event(f, [f"MountVolume.SetUp failed for volume \"secret-vol\" : secret \"{f.pick('db-credentials', 'app-secrets')}\" not found"]),
        lambda f: [f"  secretName: {f.pick('db-credentials', 'tls-orders', 'registry-pull')}\n  secretKeyRef:\n    name: app-secrets\n    key: DB_PASSWORD"],
        lambda f: _k8s_event(f, [f"Back-off restarting failed container api in pod {f.pod()}_default({f.uuid()})"]),
        lambda f: [f"{f.ts()} WARN  auth - bearer token expired for client_id={f.uuid()}; refreshing"],
        lambda f: [f"{f.ts()} INFO  ingress - Basic authentication required for /admin"],
        lambda f: [f"{f.ts()} ERROR auth - Authorization header missing"],
        lambda f: _py_trace(f, ["KeyError: 'password'"]),
        lambda f: _java_trace(f, [f"org.postgresql.util.PSQLException: FATAL: password authentication failed for user \"{f.user()}\""]),
        lambda f: [f"{f.ts()} INFO  iam - assumed arn:aws:iam::{f.chars(string.digits, 12)}:role/orders-deployer principal=AROA{f.chars(BASE32, 17)}"],
        lambda f: _logfmt(f, "debug", "cache hit", [("key", f"tenant:{f.r.randint(1, 99)}:user:{f.r.randint(1, 9999)}:profile"), ("ttl", "300")]),
        lambda f: _json_line(f, [("msg", "payment created"), ("idempotency_key", f.uuid()), ("api_key_id", f"key_{f.hexs(24)}")]),
        lambda f: [f"{f.ts()} INFO  webhook - X-Hub-Signature-256: sha256={f.hexs(64)} verified"],
        lambda f: _logfmt(f, "info", "artifact", [("sha256", f.hexs(64)), ("signature", f.hexs(64)), ("path", "/releases/orders-1.4.2.tgz")]),
        lambda f: [f"{f.ts()} INFO  session {f.uuid()} started for user {f.r.randint(1, 9999)}"],
        lambda f: [f"{f.ts()} DEBUG  uploaded chunk {f.b64(48)} ({f.r.randint(1, 99)}/100)"],
        lambda f: _json_line(f, [("msg", "span"), ("traceparent", f"00-{f.hexs(32)}-{f.hexs(16)}-01")]),
        lambda f: [f"{f.ts()} INFO  scheduler - task-sk-{f.r.randint(1, 999)} disk-pressure risk-score=0.{f.r.randint(1, 99)}"],
        lambda f: [f"{f.ts()} INFO  user {f.user()} updated their password settings; mfa=enabled"],
        lambda f: [f"{f.ts()} DEBUG  oauth - token endpoint https://login.example.com/oauth2/token returned 200 in {f.r.randint(5, 300)}ms"],
        lambda f: [f"{f.ts()} INFO  vault - secret engine kv-v2 mounted at secret/ (accessor kv_{f.hexs(8)})"],
        lambda f: _nginx(f, ["/healthz"], 200),
        lambda f: [f"{f.ts()} INFO  emitted metric http_requests_total{{route=\"/login\",status=\"401\"}} value={f.r.randint(1, 99)}"],
        lambda f: [f"{f.ts()} WARN  rate limit: {f.r.randint(1, 90)} tokens left in bucket api-key-quota"],
    ]  # fmt: skip


def assemble(parts: list[Part]) -> tuple[str, list[dict[str, object]]]:
    text: list[str] = []
    secrets: list[dict[str, object]] = []
    pos = 0
    for part in parts:
        value = part.value if isinstance(part, S) else part
        if isinstance(part, S):
            secrets.append({"start": pos, "end": pos + len(value), "kind": part.kind, "value": value})
        text.append(value)
        pos += len(value)
    return "".join(text), secrets


def fmt_of(text: str) -> str:
    if text.startswith("{"):
        return "json"
    if text.startswith("time="):
        return "logfmt"
    if '"GET ' in text:
        return "access_log"
    if "Traceback" in text or "\n\tat " in text:
        return "stack_trace"
    if "  Warning  " in text:
        return "k8s_event"
    return "plain"


def generate(seed: int, per_family: int, negatives_count: int) -> list[dict[str, object]]:
    fake = Fake(random.Random(seed))
    rows: list[dict[str, object]] = []
    for family, templates in positives().items():
        for _ in range(per_family):
            text, secrets = assemble(fake.r.choice(templates)(fake))
            rows.append({"family": family, "format": fmt_of(text), "text": text, "secrets": secrets})
    negs = negatives()
    for i in range(negatives_count):
        text, secrets = assemble(negs[i % len(negs)](fake))
        rows.append({"family": "none", "format": fmt_of(text), "text": text, "secrets": secrets})
    fake.r.shuffle(rows)
    for i, row in enumerate(rows):
        row["id"] = i
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--per-family", type=int, default=20)
    parser.add_argument("--negatives", type=int, default=480)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    rows = generate(args.seed, args.per_family, args.negatives)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    with_secrets = sum(1 for r in rows if r["secrets"])
    print(f"wrote {len(rows)} lines ({with_secrets} with secrets, {len(rows) - with_secrets} without) to {args.out}")


if __name__ == "__main__":
    main()
