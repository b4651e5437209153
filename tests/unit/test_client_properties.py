"""Producer properties the Python client types itself, and any real property with any odd value: never a traceback.

confluent-kafka-python reads a few properties before librdkafka sees them
(``delivery.report.only.error`` must be a bool; ``default.topic.config`` and ``logger``
Python objects). KAFKA_PRODUCER_* text for them is converted or refused with one line.
"""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from foot_traffic.cli.commands import main
from foot_traffic.config.producer import PRODUCER_PREFIX, is_sensitive, property_name
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.security import client_config
from foot_traffic.errors import ConfigError
from foot_traffic.kafka.client import producer_config
from foot_traffic.kafka.properties import PYTHON_OBJECTS, client_error, typed

_NAMES = """
client.id metadata.broker.list bootstrap.servers message.max.bytes message.copy.max.bytes receive.message.max.bytes
max.in.flight.requests.per.connection max.in.flight metadata.recovery.strategy topic.metadata.refresh.interval.ms
metadata.max.age.ms topic.metadata.refresh.fast.interval.ms topic.metadata.refresh.sparse
topic.metadata.propagation.max.ms topic.blacklist debug socket.timeout.ms socket.send.buffer.bytes
socket.receive.buffer.bytes socket.keepalive.enable socket.nagle.disable socket.max.fails broker.address.ttl
broker.address.family socket.connection.setup.timeout.ms connections.max.idle.ms reconnect.backoff.ms
reconnect.backoff.max.ms statistics.interval.ms log.queue log.thread.name enable.random.seed log.connection.close
api.version.request api.version.request.timeout.ms api.version.fallback.ms broker.version.fallback
allow.auto.create.topics security.protocol ssl.cipher.suites ssl.curves.list ssl.sigalgs.list ssl.key.location
ssl.key.password ssl.key.pem ssl.certificate.location ssl.certificate.pem ssl.ca.location ssl.ca.pem
ssl.crl.location ssl.keystore.location ssl.keystore.password enable.ssl.certificate.verification
ssl.endpoint.identification.algorithm sasl.mechanisms sasl.mechanism sasl.kerberos.service.name
sasl.kerberos.principal sasl.username sasl.password sasl.oauthbearer.config enable.sasl.oauthbearer.unsecure.jwt
sasl.oauthbearer.method sasl.oauthbearer.client.id sasl.oauthbearer.client.secret sasl.oauthbearer.scope
sasl.oauthbearer.extensions sasl.oauthbearer.token.endpoint.url client.rack client.dns.lookup enable.metrics.push
transactional.id transaction.timeout.ms enable.idempotence enable.gapless.guarantee queue.buffering.max.messages
queue.buffering.max.kbytes queue.buffering.max.ms linger.ms message.send.max.retries retries retry.backoff.ms
retry.backoff.max.ms queue.buffering.backpressure.threshold compression.codec compression.type batch.num.messages
batch.size delivery.report.only.error sticky.partitioning.linger.ms request.required.acks acks request.timeout.ms
message.timeout.ms delivery.timeout.ms partitioner compression.level queuing.strategy produce.offset.report group.id
group.instance.id session.timeout.ms enable.auto.commit auto.commit.interval.ms enable.partition.eof isolation.level
fetch.wait.max.ms auto.offset.reset check.crcs default.topic.config logger
"""
PROPERTIES = _NAMES.split()
"""Real property names: librdkafka's (producer, global, and a few consumer ones) and the Python client's own."""

ODD_VALUES = st.one_of(
    st.sampled_from(["true", "false", "TRUE", "False", "1", "0", "-1", "2147483648", "1e3", "nan", " 5", "none"]),
    st.sampled_from(["all", "lz4", "gzip", "zstd", "murmur2", "earliest", "SSL", "PLAIN", "https", "{}", "[]"]),
    st.text(max_size=12),
    st.text(st.characters(codec="utf-8"), min_size=200, max_size=400),
)
"""Words each property might take, numbers out of range, and any text at all (controls, NULs, surrogates)."""


def variable(prop: str, *, lower: bool = False) -> str:
    """The KAFKA_PRODUCER_* variable that sets ``prop``."""
    return PRODUCER_PREFIX + (prop if lower else prop.upper().replace(".", "_"))


def problems_of(env: dict[str, str]) -> list[str]:
    """The configuration problems of ``env``; fails the test if there are none."""
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value.problems


def test_the_property_list_holds_only_real_properties() -> None:
    """Every librdkafka name of the list is one the client knows (the test would prove little otherwise)."""
    unknown = [
        prop
        for prop in PROPERTIES
        if prop not in PYTHON_OBJECTS and "No such configuration property" in (client_error({prop: "1"}) or "")
    ]
    assert unknown == []


def test_delivery_report_only_error_false_is_converted_to_a_bool() -> None:
    """KAFKA_PRODUCER_DELIVERY_REPORT_ONLY_ERROR=false reaches the client as False, which it accepts."""
    settings = load_settings({variable("delivery.report.only.error"): "false"})
    config = client_config(settings)
    assert config["delivery.report.only.error"] is False
    assert client_error(config) is None


def test_delivery_report_only_error_true_is_refused() -> None:
    """True is the sink's own choice where its counts allow it: refused as a setting, saying why."""
    (problem,) = problems_of({variable("delivery.report.only.error"): "true"})
    assert problem.startswith(
        "KAFKA_PRODUCER_DELIVERY_REPORT_ONLY_ERROR='true': expected false or no value: foot-traffic sets "
    )


def test_delivery_report_only_error_other_words_are_refused() -> None:
    """A value that is neither true nor false says what is expected."""
    (problem,) = problems_of({variable("delivery.report.only.error"): "yes"})
    assert problem == "KAFKA_PRODUCER_DELIVERY_REPORT_ONLY_ERROR='yes': expected true or false"


@pytest.mark.parametrize("prop", sorted(PYTHON_OBJECTS))
def test_properties_that_need_a_python_object_are_refused(prop: str) -> None:
    """default.topic.config (a dict) and logger (a Logger) cannot come from text: one line says so."""
    (problem,) = problems_of({variable(prop): "x"})
    assert problem.startswith(f"{variable(prop)}='x': expected no value: {prop} takes a Python ")


def test_the_traceback_of_the_issue_is_now_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Run with KAFKA_PRODUCER_DELIVERY_REPORT_ONLY_ERROR=true: exit 2, one line naming the variable."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variable("delivery.report.only.error"), "true")
        assert main(["run", "--sink", "stdout", "--daily-customers", "1"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("foot-traffic: error: KAFKA_PRODUCER_DELIVERY_REPORT_ONLY_ERROR='true': expected ")


def test_typed_leaves_text_it_does_not_know_as_it_is() -> None:
    """Only true/false of delivery.report.only.error become bools; anything else is left for the client to refuse."""
    assert typed({"delivery.report.only.error": " TRUE ", "linger.ms": "5"}) == {
        "delivery.report.only.error": True,
        "linger.ms": "5",
    }
    assert typed({"delivery.report.only.error": "maybe"}) == {"delivery.report.only.error": "maybe"}


def test_the_client_s_own_type_errors_are_reported_as_text() -> None:
    """The Python client's TypeError on a str where it wants a bool becomes a message, not a traceback."""
    message = client_error({"delivery.report.only.error": "maybe"})
    assert message == "Expected delivery.report.only.error to be bool type, not str"


def assert_well_formed(problems: list[str], env: dict[str, str]) -> None:
    """At least one problem; each names a variable that was set, says what is expected, and masks a secret."""
    assert problems
    for problem in problems:
        name = problem.split("=", 1)[0]
        assert env.get(name, "") != "", problem
        assert "expected" in problem
        if is_sensitive(property_name(name)):
            assert problem.startswith(f"{name}='***'"), "a secret's value is masked"


def _quiet() -> logging.Logger:
    logger = logging.Logger("test.client_properties")
    logger.disabled = True
    return logger


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chosen=st.lists(st.tuples(st.sampled_from(PROPERTIES), ODD_VALUES, st.booleans()), min_size=1, max_size=3),
)
def test_any_real_property_with_any_value_is_accepted_or_reported(chosen: list[tuple[str, str, bool]]) -> None:
    """Real property names × odd values: Settings whose client config the client accepts, or lines naming them."""
    env = {variable(prop, lower=lower): value for prop, value, lower in chosen}
    try:
        loaded = load_settings(env)
    except ConfigError as exc:
        event("refused")
        assert_well_formed(exc.problems, env)
        return
    event("accepted")
    config = {k: v for k, v in producer_config("", client_config(loaded)).items() if k != "bootstrap.servers"}
    Producer(config, logger=_quiet())  # raises if the run's own client would refuse what the check accepted


def test_an_error_naming_a_property_s_alias_names_the_variable_that_set_it() -> None:
    """An error calling request.required.acks "acks" (its alias) still names the variable that set it."""
    (problem,) = problems_of({variable("request.required.acks"): "1"})
    assert problem.startswith("KAFKA_PRODUCER_REQUEST_REQUIRED_ACKS='1': expected a value the Kafka client accepts; ")
    assert "`acks` must be set to `all` when `enable.idempotence` is true" in problem
