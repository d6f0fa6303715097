"""The planner: decisions tested without Kafka or Kubernetes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from durabletopic.core.configs import MIN_INSYNC_REPLICAS, THROTTLE_KEYS, UNCLEAN_LEADER_ELECTION
from durabletopic.core.model import (
    Broker,
    ClusterInfo,
    DeletionPolicy,
    DriftPolicy,
    DurableTopicSpec,
    ObservedTopic,
    PartitionState,
    Policy,
    Recorded,
)
from durabletopic.core.ownership import DeleteTopic, plan_deletion
from durabletopic.core.plan import (
    AddPartitions,
    AlterConfigs,
    CreateTopic,
    Reassign,
    keys_to_read,
    plan_topic,
)
from durabletopic.core.reasons import Reason, Severity

THREE_BROKERS = ClusterInfo(tuple(Broker(i, f"r{i}") for i in (1, 2, 3)))
POLICY = Policy()


def spec(**fields: object) -> DurableTopicSpec:
    values: dict[str, object] = {"partitions": 3}
    values.update(fields)
    return DurableTopicSpec.model_validate(values)


def topic(
    name: str = "orders",
    partitions: int = 3,
    rf: int = 3,
    overrides: dict[str, str] | None = None,
    effective: dict[str, str] | None = None,
    topic_id: str = "id-1",
) -> ObservedTopic:
    replicas = tuple(range(1, rf + 1))
    parts = tuple(PartitionState(p, replicas[0], replicas, replicas) for p in range(partitions))
    overrides = dict(overrides or {})
    eff = {MIN_INSYNC_REPLICAS: "1", UNCLEAN_LEADER_ELECTION: "false", **overrides, **(effective or {})}
    return ObservedTopic(name, topic_id, parts, overrides, eff)


DURABLE = {MIN_INSYNC_REPLICAS: "2", UNCLEAN_LEADER_ELECTION: "false"}


def test_missing_topic_is_created_with_durability_configs() -> None:
    plan = plan_topic(spec(config={"retention.ms": "1000"}), "orders", None, THREE_BROKERS, POLICY)
    assert plan.actions == (
        CreateTopic(
            "orders",
            3,
            3,
            {"retention.ms": "1000", MIN_INSYNC_REPLICAS: "2", UNCLEAN_LEADER_ELECTION: "false"},
        ),
    )
    assert not plan.refusals


def test_too_few_brokers_creates_nothing() -> None:
    two = ClusterInfo(THREE_BROKERS.brokers[:2])
    plan = plan_topic(spec(), "orders", None, two, POLICY)
    assert plan.actions == ()
    assert plan.refusals[0].reason is Reason.INSUFFICIENT_BROKERS
    assert "spec.replicationFactor" in plan.refusals[0].message


def test_spec_below_floor_is_refused_with_the_field() -> None:
    plan = plan_topic(spec(replicationFactor=2, minInSyncReplicas=1), "orders", None, THREE_BROKERS, POLICY)
    assert plan.actions == ()
    fields = {r.field for r in plan.refusals}
    assert fields == {"spec.replicationFactor", "spec.minInSyncReplicas"}
    assert all(r.reason is Reason.POLICY_VIOLATION for r in plan.refusals)


def test_durability_key_in_config_is_invalid_config() -> None:
    plan = plan_topic(spec(config={MIN_INSYNC_REPLICAS: "1"}), "orders", None, THREE_BROKERS, POLICY)
    assert plan.actions == ()
    assert plan.refusals[0].reason is Reason.INVALID_CONFIG


def test_adopted_topic_gets_durability_keys_incrementally() -> None:
    observed = topic(overrides={"retention.ms": "5"})
    plan = plan_topic(spec(), "orders", observed, THREE_BROKERS, POLICY)
    assert plan.actions == (AlterConfigs("orders", DURABLE),)
    assert plan.unmanaged_configs == ("retention.ms",)


def test_in_sync_topic_needs_nothing() -> None:
    plan = plan_topic(spec(), "orders", topic(overrides=DURABLE), THREE_BROKERS, POLICY)
    assert plan.actions == () and plan.in_sync


def test_partitions_grow_and_never_shrink() -> None:
    grow = plan_topic(spec(partitions=6), "orders", topic(overrides=DURABLE), THREE_BROKERS, POLICY)
    assert grow.actions == (AddPartitions("orders", 6),)
    shrink = plan_topic(spec(partitions=2), "orders", topic(overrides=DURABLE), THREE_BROKERS, POLICY)
    assert shrink.actions == ()
    assert shrink.refusals[0].reason is Reason.PARTITION_DECREASE_REFUSED


def test_low_replication_factor_is_raised_by_reassignment_and_min_isr_waits() -> None:
    observed = topic(rf=1)
    plan = plan_topic(spec(), "orders", observed, THREE_BROKERS, POLICY)
    assert not plan.refusals
    reassign, alter = plan.actions
    assert isinstance(reassign, Reassign) and reassign.target_replication_factor == 3
    assert all(replicas[0] == 1 and len(set(replicas)) == 3 for replicas in reassign.assignment.values())
    assert isinstance(alter, AlterConfigs)
    assert MIN_INSYNC_REPLICAS not in alter.configs
    assert alter.configs[UNCLEAN_LEADER_ELECTION] == "false"
    rf_diff = next(d for d in plan.differences if d.key == "replicationFactor")
    assert rf_diff.severity is Severity.WEAKENING


def test_no_second_reassignment_while_one_runs() -> None:
    plan = plan_topic(spec(), "orders", topic(rf=1), THREE_BROKERS, POLICY, reassigning=True)
    assert plan.moving
    assert not any(isinstance(a, Reassign) for a in plan.actions)


def test_too_few_racks_moves_nothing() -> None:
    two_racks = ClusterInfo((Broker(1, "a"), Broker(2, "a"), Broker(3, "b")))
    plan = plan_topic(spec(), "orders", topic(rf=1), two_racks, POLICY)
    assert plan.refusals[0].reason is Reason.INSUFFICIENT_BROKERS
    assert not any(isinstance(a, Reassign) for a in plan.actions)


def test_replication_factor_decrease() -> None:
    refused = plan_topic(
        spec(replicationFactor=2, minInSyncReplicas=1), "orders", topic(rf=3), THREE_BROKERS, POLICY
    )
    assert refused.refusals[0].reason is Reason.REPLICATION_FACTOR_DECREASE_REFUSED
    assert refused.actions == ()
    five = ClusterInfo(tuple(Broker(i, f"r{i}") for i in range(1, 6)))
    observed = topic(rf=5, overrides=DURABLE)
    allowed = plan_topic(
        spec(replicationFactor=4),
        "orders",
        observed,
        five,
        POLICY,
        recorded=Recorded(applied_replication_factor=5),
    )
    (reassign,) = allowed.actions
    assert isinstance(reassign, Reassign)
    assert all(len(r) == 4 and r[0] == 1 for r in reassign.assignment.values())


def test_throttle_removed_when_nothing_moves() -> None:
    observed = topic(overrides={**DURABLE, THROTTLE_KEYS[0]: "*", THROTTLE_KEYS[1]: "*"})
    plan = plan_topic(spec(), "orders", observed, THREE_BROKERS, POLICY)
    assert plan.actions == (AlterConfigs("orders", dict.fromkeys(THROTTLE_KEYS)),)
    moving = plan_topic(spec(), "orders", observed, THREE_BROKERS, POLICY, reassigning=True)
    assert moving.actions == ()


def test_drift_under_report_changes_nothing() -> None:
    observed = topic(overrides={MIN_INSYNC_REPLICAS: "1", UNCLEAN_LEADER_ELECTION: "false"})
    plan = plan_topic(
        spec(driftPolicy="Report"), "orders", observed, THREE_BROKERS, POLICY, spec_already_applied=True
    )
    assert plan.actions == ()
    (difference,) = plan.differences
    assert (difference.key, difference.actual, difference.severity) == (
        MIN_INSYNC_REPLICAS,
        "1",
        Severity.WEAKENING,
    )


def test_drift_under_enforce_is_reverted() -> None:
    observed = topic(overrides={MIN_INSYNC_REPLICAS: "2", UNCLEAN_LEADER_ELECTION: "true"})
    plan = plan_topic(spec(), "orders", observed, THREE_BROKERS, POLICY, spec_already_applied=True)
    assert plan.actions == (AlterConfigs("orders", {UNCLEAN_LEADER_ELECTION: "false"}),)
    assert plan.differences[0].severity is Severity.WEAKENING


def test_key_inherited_from_broker_default_is_drift() -> None:
    observed = topic(overrides={MIN_INSYNC_REPLICAS: "2"}, effective={UNCLEAN_LEADER_ELECTION: "false"})
    plan = plan_topic(spec(), "orders", observed, THREE_BROKERS, POLICY, spec_already_applied=True)
    (difference,) = plan.differences
    assert difference.key == UNCLEAN_LEADER_ELECTION and "broker default" in difference.actual


def test_deletion_only_with_delete_policy_and_matching_id() -> None:
    observed = topic(topic_id="abc")
    retain = spec()
    delete = spec(deletionPolicy="Delete")
    assert plan_deletion(retain, observed, Recorded(topic_id="abc"), owner=True)[0] is None
    assert plan_deletion(delete, observed, Recorded(topic_id="other"), owner=True)[0] is None
    assert plan_deletion(delete, observed, Recorded(topic_id="abc"), owner=False)[0] is None
    assert plan_deletion(delete, observed, Recorded(topic_id="abc"), owner=True)[0] == DeleteTopic(
        "orders", "abc"
    )


# ----- properties over random specs and observed states -----

config_values = st.sampled_from(["true", "false", "1", "2", "3", "4", "delete", "compact", "1000"])
observed_topics = st.builds(
    lambda partitions, rf, min_isr, unclean, leader_ok: ObservedTopic(
        "t",
        "id",
        tuple(
            PartitionState(p, 1 if leader_ok else None, tuple(range(1, rf + 1)), tuple(range(1, rf + 1)))
            for p in range(partitions)
        ),
        {
            k: v
            for k, v in ((MIN_INSYNC_REPLICAS, min_isr), (UNCLEAN_LEADER_ELECTION, unclean))
            if v is not None
        },
        {MIN_INSYNC_REPLICAS: min_isr or "1", UNCLEAN_LEADER_ELECTION: unclean or "false"},
    ),
    st.integers(1, 12),
    st.integers(1, 5),
    st.one_of(st.none(), st.sampled_from(["1", "2", "3", "4"])),
    st.one_of(st.none(), st.sampled_from(["true", "false"])),
    st.booleans(),
)
specs = st.builds(
    lambda partitions, rf, min_isr, config, drift, deletion: DurableTopicSpec.model_validate(
        {
            "partitions": partitions,
            "replicationFactor": rf,
            "minInSyncReplicas": min_isr,
            "config": config,
            "driftPolicy": drift,
            "deletionPolicy": deletion,
        }
    ),
    st.integers(-2, 14),
    st.integers(-1, 6),
    st.integers(-1, 6),
    st.dictionaries(
        st.sampled_from(["retention.ms", "cleanup.policy", MIN_INSYNC_REPLICAS, UNCLEAN_LEADER_ELECTION]),
        config_values,
        max_size=3,
    ),
    st.sampled_from(list(DriftPolicy)),
    st.sampled_from(list(DeletionPolicy)),
)
policies = st.builds(
    lambda rf, isr: Policy(min_replication_factor=rf, min_insync_replicas=isr),
    st.integers(1, 4),
    st.integers(1, 3),
)
clusters = st.integers(0, 5).map(lambda n: ClusterInfo(tuple(Broker(i, f"r{i}") for i in range(1, n + 1))))


@settings(max_examples=400, deadline=None)
@given(specs, st.one_of(st.none(), observed_topics), clusters, policies, st.booleans())
def test_no_plan_ever_weakens_a_topic(
    desired: DurableTopicSpec,
    observed: ObservedTopic | None,
    cluster: ClusterInfo,
    policy: Policy,
    applied: bool,
) -> None:
    plan = plan_topic(desired, "t", observed, cluster, policy, spec_already_applied=applied)
    for action in plan.actions:
        if isinstance(action, CreateTopic):
            assert observed is None
            assert action.replication_factor >= policy.min_replication_factor
            assert (
                policy.min_insync_replicas
                <= int(action.configs[MIN_INSYNC_REPLICAS])
                < action.replication_factor
            )
            assert action.configs[UNCLEAN_LEADER_ELECTION] == "false"
            assert action.replication_factor <= cluster.live_broker_count
        elif isinstance(action, AlterConfigs):
            assert observed is not None
            assert action.configs.get(UNCLEAN_LEADER_ELECTION, "false") == "false"
            assert action.configs.get(MIN_INSYNC_REPLICAS, "") is not None, (
                "never removes the durability keys"
            )
            if (min_isr_value := action.configs.get(MIN_INSYNC_REPLICAS)) is not None:
                new_min_isr = int(min_isr_value)
                assert new_min_isr >= policy.min_insync_replicas
                assert new_min_isr < observed.replication_factor
        elif isinstance(action, AddPartitions):
            assert observed is not None and action.total > observed.partition_count
        elif isinstance(action, Reassign):
            assert observed is not None
            assert action.target_replication_factor == desired.replication_factor
            assert action.target_replication_factor >= policy.min_replication_factor
            assert action.target_replication_factor > desired.min_insync_replicas
            live = {b.node_id for b in cluster.brokers}
            for number, replicas in action.assignment.items():
                before = observed.partitions[number]
                assert len(replicas) == action.target_replication_factor == len(set(replicas))
                if before.leader is not None:
                    assert before.leader in replicas, "a move never drops the leader"
                added = set(replicas) - set(before.replicas)
                assert added <= live
        else:  # pragma: no cover - the planner has no other action kinds
            raise AssertionError(f"unexpected action {action}")
    if plan.refusals and any(
        r.reason in (Reason.POLICY_VIOLATION, Reason.INVALID_CONFIG) for r in plan.refusals
    ):
        assert plan.actions == ()
    if applied and desired.drift_policy is DriftPolicy.REPORT:
        assert plan.actions == ()


@settings(max_examples=200, deadline=None)
@given(specs, st.one_of(st.none(), observed_topics), st.text(max_size=5), st.booleans())
def test_deletion_happens_only_on_the_delete_path(
    desired: DurableTopicSpec, observed: ObservedTopic | None, recorded: str, owner: bool
) -> None:
    action, why = plan_deletion(desired, observed, Recorded(topic_id=recorded or None), owner=owner)
    assert why
    if action is not None:
        assert desired.deletion_policy is DeletionPolicy.DELETE and owner
        assert observed is not None and observed.topic_id == recorded


def test_the_keys_read_of_a_settled_topic_are_every_key_a_decision_rests_on() -> None:
    recorded = Recorded(topic_id="id-1", applied_generation=1, managed_configs=frozenset({"cleanup.policy"}))
    keys = keys_to_read(spec(config={"retention.ms": "1000"}), recorded)
    # The durability keys, the spec's, a key the operator set that the spec no longer names, the throttles.
    assert keys == {
        MIN_INSYNC_REPLICAS,
        UNCLEAN_LEADER_ELECTION,
        "retention.ms",
        "cleanup.policy",
        *THROTTLE_KEYS,
    }


def test_a_read_by_key_keeps_the_unmanaged_configs_the_last_complete_read_found() -> None:
    recorded = Recorded(topic_id="id-1", applied_generation=1, unmanaged_configs=("segment.ms",))
    observed = topic(overrides=DURABLE)
    partial = ObservedTopic(
        observed.name,
        observed.topic_id,
        observed.partitions,
        DURABLE,
        observed.effective,
        configs_complete=False,
    )
    complete = plan_topic(spec(), "orders", observed, THREE_BROKERS, POLICY, recorded=recorded)
    by_key = plan_topic(spec(), "orders", partial, THREE_BROKERS, POLICY, recorded=recorded)
    assert complete.unmanaged_configs == ()  # a complete read that no longer finds it
    assert by_key.unmanaged_configs == ("segment.ms",)
    assert by_key.actions == complete.actions == ()
