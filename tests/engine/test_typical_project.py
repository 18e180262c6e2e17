"""A typical iii Python project (issue 18): its ``config.yaml`` (streams on Redis, state on the
file-based kv store, HTTP with CORS, observability, pubsub, cron, and ``iii-exec`` running the
worker) starts unmodified with ``iii-asgi engine --config config.yaml`` and the worker's routes
answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import redis

from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
workers:
  - name: iii-worker-manager
    config:
      host: 127.0.0.1
      port: ${III_ENGINE_PORT:49134}

  - name: iii-http
    config:
      host: 127.0.0.1
      port: ${III_HTTP_PORT:3111}
      default_timeout: 30000
      concurrency_request_limit: 1024
      cors:
        allowed_origins:
          - http://localhost:3000
          - http://localhost:5173
        allowed_methods: [GET, POST, PUT, DELETE, OPTIONS]

  - name: iii-state
    config:
      adapter:
        name: kv
        config:
          store_method: file_based
          file_path: ./data/state_store.db

  - name: iii-stream
    config:
      host: 127.0.0.1
      port: ${III_STREAM_PORT:3112}
      adapter:
        name: redis
        config:
          redis_url: ${REDIS_URL:redis://localhost:6379}

  - name: iii-queue
    config:
      adapter:
        name: builtin
        config:
          store_method: file_based
          file_path: ./data/queue_store

  - name: iii-pubsub
    config:
      adapter:
        name: local

  - name: iii-cron
    config:
      adapter:
        name: kv

  - name: iii-observability
    config:
      enabled: true
      service_name: todo-service
      exporter: memory
      sampling_ratio: 1.0
      metrics_enabled: true
      logs_enabled: true
      logs_console_output: false

  - name: iii-exec
    config:
      watch:
        - src/**/*.py
      exec:
        - python src/main.py
"""

WORKER = '''\
"""The todo worker: HTTP routes over a stream (Redis) and state (the kv file store)."""

import os
import time
import uuid

from iii import InitOptions, register_worker

iii = register_worker(os.environ["III_URL"], InitOptions(worker_name="todo-worker"))


def call(function_id, payload):
    return iii.trigger({"function_id": function_id, "payload": payload})


def create_todo(request):
    todo = {"id": str(uuid.uuid4()), "title": request["body"]["title"]}
    call("stream::set", {"stream_name": "todos", "group_id": "inbox", "item_id": todo["id"],
                         "data": todo})
    count = call("state::update", {"scope": "todos", "key": "stats",
                                   "ops": [{"type": "increment", "path": "created", "by": 1}]})
    call("publish", {"topic": "todo.created", "data": todo})
    return {"status_code": 201, "body": {**todo, "created": count["new_value"]["created"]}}


def list_todos(request):
    return {"body": call("stream::list", {"stream_name": "todos", "group_id": "inbox"})}


def stats(request):
    return {"body": {
        "stats": call("state::get", {"scope": "todos", "key": "stats"}),
        "last": call("state::get", {"scope": "todos", "key": "last_created"}),
        "ticks": call("state::get", {"scope": "cron", "key": "ticks"}),
    }}


def on_created(todo):
    call("state::set", {"scope": "todos", "key": "last_created", "value": todo["title"]})


def tick(event):
    call("state::update", {"scope": "cron", "key": "ticks",
                           "ops": [{"type": "increment", "path": "", "by": 1}]})


for function_id, handler, trigger in [
    ("todos::create", create_todo, {"type": "http", "config": {"api_path": "/todos",
                                                                "http_method": "POST"}}),
    ("todos::list", list_todos, {"type": "http", "config": {"api_path": "/todos",
                                                             "http_method": "GET"}}),
    ("todos::stats", stats, {"type": "http", "config": {"api_path": "/stats",
                                                         "http_method": "GET"}}),
    ("todos::on_created", on_created, {"type": "subscribe", "config": {"topic": "todo.created"}}),
    ("todos::tick", tick, {"type": "cron", "config": {"expression": "* * * * * *"}}),
]:
    iii.register_function(function_id, handler)
    iii.register_trigger({**trigger, "function_id": function_id})
print("todo worker ready", flush=True)
while True:
    time.sleep(1)
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_typical_project_starts_and_its_routes_answer(tmp_path: Path, redis_url: str) -> None:
    project = tmp_path / "todo-project"
    (project / "src").mkdir(parents=True)
    (project / "config.yaml").write_text(CONFIG)
    (project / "src" / "main.py").write_text(textwrap.dedent(WORKER))
    http_port = _free_port()
    venv_bin = str(Path(sys.executable).parent)  # as with the project's virtualenv activated
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url,
        "III_ENGINE_PORT": "0",
        "III_HTTP_PORT": str(http_port),
        "III_STREAM_PORT": "0",
    }
    env.pop("III_URL", None)
    log = project / "engine.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "iii_asgi", "engine", "--config", "config.yaml"],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{http_port}"
        origin = {"origin": "http://localhost:3000"}

        found: list[httpx.Response] = []

        def created() -> bool:  # the worker is up once its route answers
            try:
                response = httpx.post(
                    f"{base}/todos", json={"title": "milk"}, headers=origin, timeout=10
                )
            except httpx.HTTPError:
                return False
            found.append(response)
            return response.status_code == 201

        wait_for(created, timeout=90)
        response = found[-1]
        assert response.json()["title"] == "milk" and response.json()["created"] == 1
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
        todos = httpx.get(f"{base}/todos", timeout=10).json()
        assert [t["title"] for t in todos] == ["milk"]

        def settled() -> bool:
            body = httpx.get(f"{base}/stats", timeout=10).json()
            return body["last"] == "milk" and (body["ticks"] or 0) >= 1  # pubsub, cron ran

        wait_for(settled, timeout=30)
        assert httpx.get(f"{base}/stats", timeout=10).json()["stats"] == {"created": 1}
        # streams live in Redis (the real engine's key), state in the project's kv file store
        client = redis.Redis.from_url(redis_url)
        try:
            assert client.hlen("stream:todos:inbox") == 1
            assert not client.keys("state:*")
        finally:
            client.close()
        assert (project / "data" / "iii.sqlite3").exists()
    except BaseException:
        print(log.read_text())
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the exec child leaves with the engine
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
