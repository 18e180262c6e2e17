"""Queue, pubsub and cron blocks of the engine config file (builtins.md §7.2, §13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iii_asgi.engine.config.file import ConfigError, load_config
from iii_asgi.engine.config.queue import QueueConfig

QUEUES = """
workers:
  - name: queue
    config:
      queue_configs:
        emails: {max_retries: 5, concurrency: 2, backoff_ms: 250}
        orders: {type: fifo, message_group_field: customer_id, max_priority: 3}
      adapter: {name: builtin, config: {store_method: file_based, file_path: ./qdata/queue.db}}
  - name: iii-pubsub
    config: {adapter: {name: local}}
  - name: cron
    config: {adapter: {name: kv}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_queue_configs_and_adapters(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, QUEUES))
    assert config.queues == {
        "emails": QueueConfig(max_retries=5, concurrency=2, backoff_ms=250),
        "orders": QueueConfig(type="fifo", message_group_field="customer_id"),
    }
    assert config.data_dir == "qdata"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{name: queue, config: {queue_configs: {a: {colour: red}}}}", "unknown keys colour"),
        ("{name: queue, config: {queue_configs: {a: {type: fifo}}}}", "message_group_field"),
        ("{name: queue, config: {queue_configs: [a]}}", "mapping"),
        ("{name: queue, config: {adapter: {name: rabbitmq}}}", "'rabbitmq' is not provided"),
        ("{name: queue, config: {retries: 1}}", "unknown key"),
        ("{name: pubsub, config: {adapter: {name: rabbitmq}}}", "'rabbitmq' is not"),
        ("{name: iii-cron, config: {adapter: {name: bridge}}}", "'bridge' is not"),
    ],
)
def test_bad_queue_blocks(tmp_path: Path, block: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, f"workers: [{block}]\n"))
