"""Prometheus metrics: counters updated by the running services, gauges read on scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_DISPATCHED = Counter(
    "omni_events_dispatched_total", "Domain events handed to sinks by this node", registry=REGISTRY
)
ASSIGNMENTS = Counter(
    "omni_routing_offers_total", "Offers made (or auto-accepted) by this node's router", registry=REGISTRY
)
ROUTING_PASS = Histogram(
    "omni_routing_pass_seconds", "Duration of one routing pass on this node", registry=REGISTRY
)
CONVERSATIONS = Gauge(
    "omni_conversations", "Conversations by status (open ones)", ["status"], registry=REGISTRY
)
OPERATORS = Gauge("omni_operators", "Operators by current activity", ["activity"], registry=REGISTRY)
WEBHOOKS_PENDING = Gauge(
    "omni_webhook_deliveries_pending", "Webhook deliveries not yet done", registry=REGISTRY
)
LEASES_HELD = Gauge(
    "omni_lease_held",
    "1 while this node holds the lease (omni.lease: voice:ami, telegram:poll:<bot id>), 0 on standby",
    ["lease"],
    registry=REGISTRY,
)
