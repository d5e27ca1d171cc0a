"""Protocol tests for drivers.keysight_b2200 (pymeasure expected_protocol), then the driver against
the B2200 personality over the in-process adapter."""

import pytest
from pymeasure.test import expected_protocol

from drivers.keysight_b2200 import KeysightB2200, channel_list, parse_channel_list
from mocks.instruments.keysight_b2200 import KeysightB2200Personality
from mocks.transports import InProcessAdapter


def test_name_and_no_init_traffic():
    with expected_protocol(KeysightB2200, []) as m:
        assert m.name == "Keysight B2200 switching matrix"
        assert set(m.cards) == {0, 1, 2, 3, 4}
        assert m.card0 is m.cards[0] and m.card4.id == 4


def test_scpi_common():
    with expected_protocol(KeysightB2200, [
        ("*IDN?", "AGILENT,B2201A,0,A.01.00"), ("*RST", None), ("*CLS", None),
        ("SYST:ERR?", '-222,"Data out of range"'), ("SYST:ERR?", '0,"No error"'),
    ]) as m:
        assert m.id == "AGILENT,B2201A,0,A.01.00"
        m.reset()
        m.clear()
        assert [int(e[0]) for e in m.check_errors()] == [-222]


@pytest.mark.parametrize("value, wire", [("auto", "ACON"), ("normal", "NCON")])
def test_config_mode(value, wire):
    with expected_protocol(KeysightB2200, [(f":ROUT:FUNC {wire}", None),
                                           (":ROUT:FUNC?", wire)]) as m:
        m.config_mode = value
        assert m.config_mode == value


def test_config_mode_rejects():
    with expected_protocol(KeysightB2200, []) as m:
        with pytest.raises(ValueError):
            m.config_mode = "AUTO"


@pytest.mark.parametrize("card", [0, 1, 4])
@pytest.mark.parametrize("prop, get_cmd, set_cmd, value, reply", [
    ("connection_rule", ":ROUT:CONN:RULE? {c}", ":ROUT:CONN:RULE {c},SROU", "single",
     "SROU"),
    ("connection_rule", ":ROUT:CONN:RULE? {c}", ":ROUT:CONN:RULE {c},FREE", "free", "FREE"),
    ("connection_sequence", ":ROUT:CONN:SEQ? {c}", ":ROUT:CONN:SEQ {c},NSEQ", "none",
     "NSEQ"),
    ("connection_sequence", ":ROUT:CONN:SEQ? {c}", ":ROUT:CONN:SEQ {c},BBM", "bbm", "BBM"),
    ("connection_sequence", ":ROUT:CONN:SEQ? {c}", ":ROUT:CONN:SEQ {c},MBBR", "mbb", "MBBR"),
    ("bias_enabled", ":ROUT:BIAS? {c}", ":ROUT:BIAS {c},1", True, "1"),
    ("bias_enabled", ":ROUT:BIAS? {c}", ":ROUT:BIAS {c},0", False, "0"),
    ("bias_port", ":ROUT:BIAS:PORT? {c}", ":ROUT:BIAS:PORT {c},10", 10, "10"),
    ("ground_enabled", ":ROUT:AGND? {c}", ":ROUT:AGND {c},1", True, "1"),
    ("ground_port", ":ROUT:AGND:PORT? {c}", ":ROUT:AGND:PORT {c},12", 12, "12"),
    ("ground_unused_inputs", ":ROUT:AGND:UNUSED? {c}", ":ROUT:AGND:UNUSED {c},'3,5'", [3, 5],
     "'3,5'"),
    ("ground_unused_inputs", ":ROUT:AGND:UNUSED? {c}", ":ROUT:AGND:UNUSED {c},''", [], "''"),
    ("couple_enabled", ":ROUT:COUP? {c}", ":ROUT:COUP {c},1", True, "1"),
    ("couple_ports", ":ROUT:COUP:PORT? {c}", ":ROUT:COUP:PORT {c},'1,13'", [1, 13],
     "'1,13'"),
])
def test_card_controls(card, prop, get_cmd, set_cmd, value, reply):
    with expected_protocol(KeysightB2200, [(set_cmd.format(c=card), None),
                                           (get_cmd.format(c=card), reply)]) as m:
        setattr(m.cards[card], prop, value)
        assert getattr(m.cards[card], prop) == value


@pytest.mark.parametrize("prop, value", [
    ("connection_rule", "SROU"), ("connection_sequence", "mbbr"), ("bias_enabled", 2),
    ("bias_port", 0), ("bias_port", 15), ("bias_port", 2.5), ("ground_port", 15),
    ("ground_unused_inputs", [0]), ("ground_unused_inputs", [True]), ("couple_ports", [2]),
    ("couple_ports", [15]), ("couple_enabled", "yes"),
])
def test_card_controls_reject(prop, value):
    with expected_protocol(KeysightB2200, []) as m:
        with pytest.raises(ValueError):
            setattr(m.card0, prop, value)


@pytest.mark.parametrize("reply, pairs", [
    ("(@00105,00240)", [(1, 5), (2, 40)]),
    ("(@00240,00105)", [(1, 5), (2, 40)]),
    ("(@)", []),
    ("(@10112,11401)", [(1, 12), (14, 1)]),
])
def test_closed_channels(reply, pairs):
    with expected_protocol(KeysightB2200, [(":ROUT:CLOS:CARD? 0", reply)]) as m:
        assert m.card0.closed_channels == pairs


def test_switching_methods_auto_card():
    with expected_protocol(KeysightB2200, [
        (":ROUT:CLOS (@00105,01448)", None),
        (":ROUT:OPEN (@00105)", None),
        (":ROUT:OPEN:CARD 0", None),
        (":ROUT:OPEN:CARD 0;:ROUT:CLOS (@00103,00236)", None),
        (":ROUT:CLOS? (@00103,00104)", "1,0"),
        (":ROUT:OPEN:CARD ALL", None),
    ]) as m:
        m.card0.close([(1, 5), (14, 48)])
        m.card0.open([(1, 5)])
        m.card0.open_all()
        m.card0.route([(1, 3), (2, 36)])
        assert m.card0.is_closed([(1, 3), (1, 4)]) == [True, False]
        m.open_all()


def test_switching_methods_normal_card():
    with expected_protocol(KeysightB2200, [
        (":ROUT:CLOS (@30112)", None),
        (":ROUT:OPEN:CARD 3;:ROUT:CLOS (@30201)", None),
        (":ROUT:OPEN:CARD 3;:ROUT:CLOS (@30201);*OPC?", "1"),
    ]) as m:
        m.card3.close([(1, 12)])
        m.card3.route([(2, 1)])
        m.card3.route([(2, 1)], wait=True)


def test_bias_and_ground_output_methods():
    with expected_protocol(KeysightB2200, [
        (":ROUT:BIAS:CHAN:ENAB (@00101,00148)", None),
        (":ROUT:BIAS:CHAN:DIS (@00107)", None),
        (":ROUT:BIAS:CHAN:ENAB:CARD 0", None),
        (":ROUT:BIAS:CHAN:DIS:CARD 2", None),
        (":ROUT:AGND:CHAN:ENAB (@00101)", None),
        (":ROUT:AGND:CHAN:DIS (@00132)", None),
        (":ROUT:AGND:CHAN:ENAB:CARD 0", None),
        (":ROUT:AGND:CHAN:DIS:CARD 1", None),
    ]) as m:
        m.card0.bias_enable_outputs([1, 48])
        m.card0.bias_disable_outputs([7])
        m.card0.bias_enable_all()
        m.card2.bias_disable_all()
        m.card0.ground_enable_outputs([1])
        m.card0.ground_disable_outputs([32])
        m.card0.ground_enable_all()
        m.card1.ground_disable_all()


@pytest.mark.parametrize("card, pairs", [
    (0, [(0, 1)]), (0, [(15, 1)]), (0, [(1, 0)]), (0, [(1, 49)]), (1, [(1, 13)]),
    (0, [(True, 1)]), (0, [(1.0, 2)]), (0, []), (0, [(1, 2, 3)]),
])
def test_channel_validation(card, pairs):
    with expected_protocol(KeysightB2200, []) as m:
        with pytest.raises(ValueError):
            m.cards[card].close(pairs)
        with pytest.raises(ValueError):
            m.cards[card].route(pairs)


def test_is_closed_reply_length_checked():
    with expected_protocol(KeysightB2200, [(":ROUT:CLOS? (@00101,00102)", "1")]) as m:
        with pytest.raises(ValueError, match="1 states for 2"):
            m.card0.is_closed([(1, 1), (1, 2)])


def test_shutdown_opens_every_relay():
    with expected_protocol(KeysightB2200, [(":ROUT:OPEN:CARD ALL", None)]) as m:
        m.shutdown()
        assert m.isShutdown


def test_channel_list_helpers():
    assert channel_list(0, [(1, 5), (14, 48)]) == "(@00105,01448)"
    assert parse_channel_list("(@0105, 1203)") == [(1, 5), (12, 3)]
    for bad in ("00105", "(@1x105)", "(@123456)"):
        with pytest.raises(ValueError):
            parse_channel_list(bad)


# ---------------------------------------------------------------------- against the personality
@pytest.fixture
def live():
    p = KeysightB2200Personality()
    return KeysightB2200(InProcessAdapter(p)), p


def test_driver_round_trips_on_the_mock(live):
    m, p = live
    assert m.id == "AGILENT,B2201A,0,A.01.00"
    m.reset()
    assert m.config_mode == "auto"
    c = m.card0
    for prop, value in (("connection_rule", "single"), ("connection_sequence", "none"),
                        ("bias_port", 9), ("ground_port", 11), ("ground_unused_inputs", [3, 4]),
                        ("couple_ports", [1, 5]), ("couple_enabled", False),
                        ("bias_enabled", True), ("bias_enabled", False),
                        ("ground_enabled", True), ("ground_enabled", False)):
        setattr(c, prop, value)
        assert getattr(c, prop) == value, prop
    c.route([(1, 3), (2, 36)])
    assert c.closed_channels == [(1, 3), (2, 36)]
    assert c.is_closed([(1, 3), (2, 35)]) == [True, False]
    c.open([(1, 3)])
    assert c.closed_channels == [(2, 36)]
    m.config_mode = "normal"
    m.card2.close([(4, 12)])
    assert m.card2.closed_channels == [(4, 12)]
    assert m.card1.closed_channels == []
    m.shutdown()
    assert p.closed == set()
    assert m.check_errors() == []


def test_driver_sees_mock_errors(live):
    m, p = live
    m.card0.bias_enabled = True
    m.card0.ground_enabled = True  # refused: Bias Mode is on
    errors = m.check_errors()
    assert [int(e[0]) for e in errors] == [-221]
    assert m.card0.ground_enabled is False


def test_driver_over_a_real_socket():
    """The same driver over pyvisa-py and TCP (``TCPIP::127.0.0.1::port::SOCKET``)."""
    from mocks.transports import TcpInstrumentServer

    p = KeysightB2200Personality()
    server = TcpInstrumentServer(p).start()
    try:
        m = KeysightB2200(server.resource, visa_library="@py", read_termination="\n",
                          write_termination="\n", timeout=5000)
        m.card0.route([(1, 3), (2, 40)])
        assert m.card0.closed_channels == [(1, 3), (2, 40)]
        m.shutdown()
        assert m.card0.closed_channels == []   # a query: the write before it has been served
        assert p.closed == set()
        m.adapter.close()
    finally:
        server.stop()
