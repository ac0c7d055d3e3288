"""Receives the new orders of a PostgreSQL table through a funcd event source mapping and
writes a summary of each batch to its log: how many orders, their total, the customers, and
the range of the batch's sequence numbers (the changes' LSNs)."""
import json
from decimal import Decimal


def handler(event, context):
    inserts = [r for r in event["Records"] if r["eventName"] == "INSERT"]
    orders = [r["dynamodb"]["NewImage"] for r in inserts]
    # numeric columns arrive as JSON numbers when exact, else as strings: Decimal takes both.
    total = sum((Decimal(str(o["amount"])) for o in orders), Decimal("0"))
    summary = {
        "orders": len(orders),
        "total": str(total),
        "customers": sorted({o["customer"] for o in orders}),
        "first": inserts[0]["dynamodb"]["SequenceNumber"] if inserts else None,
        "last": inserts[-1]["dynamodb"]["SequenceNumber"] if inserts else None,
    }
    print("SUMMARY " + json.dumps(summary))
    return summary
