"""A client killed in the middle of a transaction leaves nothing behind in the store.

This is what lets a service be killed with ``kill -9`` mid-handler: its event claim and its state
change were in one transaction, so the redelivered event is processed again, once.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap

from pymongo.errors import PyMongoError

from fixloop_devkit.testing import eventually
from fixloop_shared.store import MongoClient, make_client

CLAIMING_CLIENT = textwrap.dedent(
    """
    import asyncio, sys
    from pymongo import AsyncMongoClient

    async def main() -> None:
        client = AsyncMongoClient(sys.argv[1])
        db = client[sys.argv[2]]
        await db.work_orders.insert_one({"_id": "committed-before-the-crash"})
        session = client.start_session()
        await session.start_transaction()
        await db.processed_events.insert_one({"_id": "orders:evt-1"}, session=session)
        print("claimed", flush=True)
        await asyncio.sleep(3600)  # killed here, before the work order is written

    asyncio.run(main())
    """
)


async def test_killed_clients_half_done_transaction_is_undone(
    mongodb_uri: str, mongo_client: MongoClient, database_name: str
) -> None:
    db = mongo_client[database_name]
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLAIMING_CLIENT,
        mongodb_uri,
        database_name,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert client.stdout is not None
        line = await asyncio.wait_for(client.stdout.readline(), timeout=30)
        assert line.decode().strip() == "claimed"
    finally:
        client.kill()  # SIGKILL: no clean-up in the client
        await client.wait()

    # The claim of the dead client is gone (MongoDB never showed it; the embedded store aborts
    # the transaction when the client's connections close).
    claim = await eventually(
        lambda: db.processed_events.find_one({"_id": "orders:evt-1"}),
        lambda found: found is None,
        timeout=10,
    )
    assert claim is None

    # Another client's commits, in and outside a transaction, do not bring it back, and the
    # redelivered event can be claimed again. (MongoDB reports a write conflict until it has
    # aborted the dead session's transaction, so the claim is retried.)
    async def claim_again() -> bool:
        try:
            async with mongo_client.start_session() as session, await session.start_transaction():
                await db.processed_events.insert_one({"_id": "orders:evt-1"}, session=session)
                await db.work_orders.insert_one({"_id": "wo-1"}, session=session)
        except PyMongoError:
            return False
        return True

    assert await eventually(claim_again, lambda done: done, timeout=90, interval=1)
    await db.timeline.insert_one({"_id": "entry-1"})

    async with make_client(mongodb_uri, app_name="fixloop-tests-reader") as reader:
        view = reader[database_name]
        assert await view.processed_events.count_documents({}) == 1
        work_orders = await view.work_orders.find({}).to_list()
        assert sorted(doc["_id"] for doc in work_orders) == [
            "committed-before-the-crash",
            "wo-1",
        ]
