"""CPU a node spends receiving one Redis fan-out message, with and without hiredis.

Every event a node fans out is published to Redis and comes back to every node, itself
included (python-socketio's pub/sub manager drops its own after decoding). redis-py parses
replies in Python unless ``hiredis`` is installed (``redis[hiredis]`` in pyproject.toml). A
separate process publishes ``--messages`` messages the size of a relay event; this process
receives them and reports its CPU per message (bench/README.md, "hiredis15")::

    .venv/bin/python bench/pubsub_parse.py                          # as installed
    PYTHONPATH=DIR .venv/bin/python bench/pubsub_parse.py           # DIR/hiredis.py raising
                                                                    # ImportError: the Python parser
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import redis.asyncio as aredis
from redis.utils import HIREDIS_AVAILABLE

BODY = "Привет, как дела? " * 20
PAYLOAD = (
    '{"method":"emit","event":"event","data":[{"seq":123456,"type":"message.created",'
    f'"data":{{"body":"{BODY}"}}}}],"namespace":"/operator","room":"user:12","skip_sid":null,'
    '"callback":null,"host_id":"abcdef0123456789"}'
)
PUBLISHER = """
import sys, redis
r = redis.Redis.from_url(sys.argv[1])
pipe = r.pipeline(transaction=False)
for i in range(int(sys.argv[2])):
    pipe.publish(sys.argv[3], sys.argv[4])
    if i % 500 == 499:
        pipe.execute()
pipe.execute()
"""


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("OMNI_TEST_REDIS_URL", "redis://127.0.0.1:26379")
    )
    parser.add_argument("--messages", type=int, default=20_000)
    a = parser.parse_args()
    channel = f"omni-bench-pubsub-{os.getpid()}"
    client = aredis.Redis.from_url(a.redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PUBLISHER, a.redis_url, str(a.messages), channel, PAYLOAD
    )
    got, started = 0, 0.0
    try:
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            if got == 0:
                started = time.process_time()
            got += 1
            if got == a.messages:
                break
        cpu = time.process_time() - started
    finally:
        await publisher.wait()
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()
    size, each = len(PAYLOAD.encode()), cpu / max(got - 1, 1) * 1e6
    print(f"hiredis {HIREDIS_AVAILABLE}: {got} messages of {size} B, {each:.1f} µs CPU each")


if __name__ == "__main__":
    asyncio.run(main())
