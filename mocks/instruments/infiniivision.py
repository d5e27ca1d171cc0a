"""Keysight InfiniiVision oscilloscope (3000T X-series command set, also spoken by the DSOX1102G).

Reference: Keysight InfiniiVision 3000T X-Series Oscilloscopes Programmer's Guide: :TIMebase
(MODE, RANGe, SCALe, POSition, REFerence), :CHANnel<n> (SCALe, RANGe, OFFSet, COUPling, PROBe,
DISPlay, BWLimit, INVert, LABel, IMPedance, and the ``:CHANnel<n>?`` summary), :TRIGger (MODE,
SWEep, [:EDGE] SOURce / LEVel / SLOPe), :ACQuire (TYPE, MODE, POINts?, SRATe?), :RUN / :STOP /
:SINGle / :DIGitize, :TER?, :OPERegister:CONDition?, :WAVeform (SOURce, FORMat BYTE|WORD|ASCii,
BYTeorder, UNSigned, POINts, POINts:MODE, PREamble?, DATA?, X/Y INCrement/ORigin/REFerence?),
:SYSTem:PRESet.

What is modelled
- The channels probe the wired neuron circuit (``device``: :class:`~mocks.devices.nbox.
  NbOxNeurons`, neuron ``device_index``) as named by ``probes`` (channel → ``node`` (the device
  voltage), ``rs_drop`` (a differential probe across R_s), ``input`` (the generator output)).
- Acquisition: ``:SINGle`` arms; ``:DIGitize`` arms and completes. With the trigger source EXT
  (wired to the waveform generator's sync output) the trigger is the first sync edge at least
  the pre-trigger time after arming; with sweep AUTO and no edge coming, the scope triggers
  itself at that time; with NORMal it stays armed (``*OPC?`` then gets no reply: the client
  times out, as on the instrument). A channel source behaves as AUTO (edge triggering on the
  simulated signal is not modelled). On completion the circuit is simulated over the window
  and the clock advances to its end.
- Record: ``record_points`` samples over the time range (sample rate = points / range, capped by
  ``max_sample_rate``); ``:WAV:POIN`` (≤ 62 500 in NORMal points mode, up to the record in
  MAXimum/RAW) decimates to at most that many points. ``:WAV:DATA?`` answers in one IEEE 488.2
  definite-length block: BYTE (unsigned, yreference 128, 256 codes over the 8-division range) or
  WORD (yreference 32768, MSB first unless ``:WAV:BYT LSBF``), clipped at the screen edges, or
  ASCii (``+d.ddddddE+dd`` values in V inside a ``#8`` block header). Vertical noise:
  ``noise_v`` rms from the bench generator.

Time: ``:DIGitize`` / a completed ``:SINGle`` advance the clock to the end of the window.
"""

from __future__ import annotations

import math

import numpy as np

from mocks.clock import VirtualClock
from mocks.scpi import (
    ScpiError,
    ScpiPersonality,
    parse_bool,
    parse_choice,
    parse_number,
    parse_string,
)

REFERENCE = {"LEFT": 0.1, "CENT": 0.5, "RIGH": 0.9}
FORMAT_CODES = {"BYTE": 0, "WORD": 1, "ASC": 4}
TYPE_CODES = {"NORM": 0, "PEAK": 1, "AVER": 2, "HRES": 3}
NORMAL_POINTS_MAX = 62_500
SIGNALS = ("node", "rs_drop", "input")


def fmt(x: float) -> str:
    return f"{x:+.6E}"


class InfiniiVisionPersonality(ScpiPersonality):
    """A Keysight DSOX3024T whose channels probe the wired neuron circuit."""

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index=0,
                 rng: np.random.Generator | None = None, model: str = "DSOX3024T",
                 serial: str = "MY58263000", channels: int = 4,
                 probes: dict | None = None, record_points: int = 1_000_000,
                 max_sample_rate: float = 5e9, noise_v: float = 1e-3, **options):
        if options:
            raise TypeError(f"unknown InfiniiVision options: {', '.join(options)}")
        super().__init__(clock)
        self.idn = f"KEYSIGHT TECHNOLOGIES,{model},{serial},07.50.2021102830"
        self.device, self.device_index = device, int(device_index)
        self.n_channels = int(channels)
        self.probes = {int(k): str(v) for k, v in (probes or {1: "node", 2: "rs_drop"}).items()}
        for ch, signal in self.probes.items():
            if not 1 <= ch <= self.n_channels or signal not in SIGNALS:
                raise ValueError(f"probe {ch}: {signal!r} (channels 1-{self.n_channels}, "
                                 f"signals {', '.join(SIGNALS)})")
        self.record_max = int(record_points)
        self.max_sample_rate = float(max_sample_rate)
        self.noise_v = float(noise_v)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._register()
        self.reset()

    # ================================================================== state
    def reset(self) -> None:
        self.tb = {"MODE": "MAIN", "RANG": 1e-3, "POS": 0.0, "REF": "CENT"}
        self.chan = {n: {"SCAL": 0.5, "OFFS": 0.0, "COUP": "DC", "IMP": "ONEM", "DISP": n <= 2,
                         "BWL": False, "INV": False, "LAB": f"{n}", "PROB": 1.0}
                     for n in range(1, self.n_channels + 1)}
        self.trig = {"MODE": "EDGE", "SWE": "AUTO", "SOUR": "CHAN1", "LEV": 0.0, "SLOP": "POS"}
        self.acq = {"TYPE": "NORM", "MODE": "RTIM"}
        self.wav = {"SOUR": 1, "FORM": "BYTE", "BYT": "MSBF", "UNS": True, "POIN": 1000,
                    "PMOD": "NORM"}
        self.armed_at: float | None = None
        self.running = False
        self.triggered = False  # the trigger event register (:TER?)
        self.traces: dict[int, np.ndarray] = {}
        self.t_first = 0.0  # time of the first record sample relative to the trigger
        self.dt_record = 1e-9

    def catch_up(self) -> None:
        """Finish an armed acquisition whose trigger came since the last message."""
        self._complete()

    @property
    def record_length(self) -> int:
        return int(min(self.record_max, round(self.tb["RANG"] * self.max_sample_rate)))

    def _window(self) -> tuple[float, float]:
        """(first, last) sample time of the record relative to the trigger, s."""
        left = self.tb["POS"] - REFERENCE[self.tb["REF"]] * self.tb["RANG"]
        return left, left + self.tb["RANG"]

    def _trigger_time(self) -> float | None:
        pre = max(0.0, -self._window()[0])
        earliest = self.armed_at + pre - 1e-12  # 1 ps: float rounding of the same instant
        sync = getattr(self.device, "sync", None)
        if self.trig["SOUR"] == "EXT" and sync is not None:
            edge = sync(earliest)
            if edge is not None:
                return edge
            return earliest if self.trig["SWE"] == "AUTO" else None
        return earliest

    def _complete(self) -> bool:
        """Finish an armed acquisition if its trigger has come; True if nothing is pending."""
        if self.armed_at is None:
            return True
        t_trig = self._trigger_time()
        if t_trig is None:
            return False
        first, last = self._window()
        n = self.record_length
        self.dt_record = (last - first) / n
        self.t_first = first
        times = t_trig + first + self.dt_record * np.arange(n)
        self.traces = {}
        if self.device is not None:
            signals = self.device.record(times)
            k = self.device_index
            for ch, name in self.probes.items():
                if name == "rs_drop":
                    trace = signals["current"][:, k] * self.device.params.r_series_ohm
                else:
                    trace = signals[name][:, k]
                # the acquired record: the signal plus the front end's noise, fixed from now on
                self.traces[ch] = trace + self.noise_v * self.rng.standard_normal(trace.size)
        if self.clock.now < times[-1]:
            self.clock.advance(times[-1] - self.clock.now)
        self.armed_at = None
        self.running = False
        self.triggered = True
        return True

    def _arm(self) -> None:
        self.armed_at = self.clock.now
        self.running = True
        self.triggered = False

    def wait_complete(self) -> None:
        self._complete()

    def _opc(self, args, query):
        if not self._complete():
            return None  # still waiting for a trigger: no reply, the client times out
        return super()._opc(args, query)

    # ================================================================== waveform transfer
    def _channel_samples(self, ch: int) -> np.ndarray:
        trace = self.traces.get(ch)
        if trace is None:
            trace = self.noise_v * self.rng.standard_normal(self.record_length)
            self.traces[ch] = trace
        return -trace if self.chan[ch]["INV"] else trace

    def _points(self) -> tuple[int, int]:
        """(decimation factor, points returned)."""
        n = self.record_length
        cap = NORMAL_POINTS_MAX if self.wav["PMOD"] == "NORM" else n
        want = min(self.wav["POIN"], cap, n)
        factor = math.ceil(n / want)
        return factor, math.ceil(n / factor)

    def _scaling(self, ch: int) -> tuple[float, float, int]:
        """(yincrement, yorigin, yreference) of the present format for channel ``ch``."""
        rng_v = 8 * self.chan[ch]["SCAL"]
        if self.wav["FORM"] == "WORD":
            return rng_v / 65536, self.chan[ch]["OFFS"], 32768
        if self.wav["FORM"] == "BYTE":
            return rng_v / 256, self.chan[ch]["OFFS"], 128
        return 0.0, 0.0, 0

    def _wav_source(self) -> int:
        ch = self.wav["SOUR"]
        if not self.chan[ch]["DISP"] and ch not in self.traces:
            raise ScpiError(-221, f"channel {ch} is off")
        return ch

    def _preamble(self, args, query):
        ch = self._wav_source()
        factor, points = self._points()
        yinc, yorg, yref = self._scaling(ch)
        values = [FORMAT_CODES[self.wav["FORM"]], TYPE_CODES[self.acq["TYPE"]], points, 1,
                  self.dt_record * factor, self.t_first, 0, yinc, yorg, yref]
        return ",".join(str(v) if isinstance(v, int) else fmt(v) for v in values)

    def _data(self, args, query):
        if not query:
            raise ScpiError(-113, ":WAV:DATA")
        ch = self._wav_source()
        factor, _ = self._points()
        volts = self._channel_samples(ch)[::factor]
        form = self.wav["FORM"]
        if form == "ASC":
            body = ",".join(f"{v:+.6E}" for v in volts).encode()
            header = f"#8{len(body):08d}".encode()
        else:
            yinc, yorg, yref = self._scaling(ch)
            top = 255 if form == "BYTE" else 65535
            codes = np.clip(np.rint((volts - yorg) / yinc + yref), 0, top)
            if form == "BYTE":
                dtype = np.uint8 if self.wav["UNS"] else np.int8
                body = (codes if self.wav["UNS"] else codes - 128).astype(dtype).tobytes()
            else:
                order = ">" if self.wav["BYT"] == "MSBF" else "<"
                values = codes if self.wav["UNS"] else codes - 32768
                body = values.astype(f"{order}{'u' if self.wav['UNS'] else 'i'}2").tobytes()
            digits = str(len(body))
            header = f"#{len(digits)}{digits}".encode()
        return (header + body).decode("latin-1")

    # ================================================================== commands
    def _register(self) -> None:
        reg = self.command
        reg(":TIMebase:MODE", self._tb_choice("MODE", {"MAIN": "MAIN", "WINDow": "WIND",
                                                       "XY": "XY", "ROLL": "ROLL"}))
        reg(":TIMebase[:MAIN]:RANGe", self._tb_number("RANG", 1.0))
        reg(":TIMebase[:MAIN]:SCALe", self._tb_number("RANG", 10.0))
        reg(":TIMebase[:MAIN]:POSition", self._tb_position)
        reg(":TIMebase:REFerence", self._tb_choice("REF", {"LEFT": "LEFT", "CENTer": "CENT",
                                                           "RIGHt": "RIGH"}))
        reg(":TIMebase", self._tb_summary)
        for n in range(1, self.n_channels + 1):
            head = f":CHANnel{n}" if n > 1 else ":CHANnel[1]"
            reg(f"{head}:SCALe", self._ch_number(n, "SCAL", 1.0))
            reg(f"{head}:RANGe", self._ch_number(n, "SCAL", 8.0))
            reg(f"{head}:OFFSet", self._ch_offset(n))
            reg(f"{head}:PROBe", self._ch_probe(n))
            reg(f"{head}:COUPling", self._ch_choice(n, "COUP", {"AC": "AC", "DC": "DC"}))
            reg(f"{head}:IMPedance", self._ch_choice(n, "IMP", {"ONEMeg": "ONEM",
                                                                "FIFTy": "FIFT"}))
            for key, word in (("DISP", "DISPlay"), ("BWL", "BWLimit"), ("INV", "INVert")):
                reg(f"{head}:{word}", self._ch_flag(n, key))
            reg(f"{head}:LABel", self._ch_label(n))
            reg(head, self._ch_summary(n))
        reg(":TRIGger:MODE", self._trig_choice("MODE", {"EDGE": "EDGE"}))
        reg(":TRIGger:SWEep", self._trig_choice("SWE", {"AUTO": "AUTO", "NORMal": "NORM"}))
        reg(":TRIGger[:EDGE]:SOURce", self._trig_source)
        reg(":TRIGger[:EDGE]:LEVel", self._trig_level)
        reg(":TRIGger[:EDGE]:SLOPe", self._trig_choice("SLOP", {
            "POSitive": "POS", "NEGative": "NEG", "EITHer": "EITH", "ALTernate": "ALT"}))
        reg(":ACQuire:TYPE", self._acq_choice("TYPE", {
            "NORMal": "NORM", "AVERage": "AVER", "HRESolution": "HRES", "PEAK": "PEAK"}))
        reg(":ACQuire:MODE", self._acq_choice("MODE", {"RTIMe": "RTIM", "SEGMented": "SEGM"}))
        reg(":ACQuire:POINts[:ANALog]", self._query_only(lambda: str(self.record_length)))
        reg(":ACQuire:SRATe[:ANALog]", self._query_only(
            lambda: fmt(self.record_length / self.tb["RANG"])))
        reg(":RUN", self._run)
        reg(":STOP", self._stop)
        reg(":SINGle", self._single)
        reg(":DIGitize", self._digitize)
        reg(":AUToscale", self._autoscale)
        reg(":TER", self._ter)
        reg(":OPERegister:CONDition", self._query_only(
            lambda: str(8 if self.running else 0)))
        reg(":WAVeform:SOURce", self._wav_source_cmd)
        reg(":WAVeform:FORMat", self._wav_choice("FORM", {"BYTE": "BYTE", "WORD": "WORD",
                                                          "ASCii": "ASC"}))
        reg(":WAVeform:BYTeorder", self._wav_choice("BYT", {"MSBFirst": "MSBF",
                                                            "LSBFirst": "LSBF"}))
        reg(":WAVeform:UNSigned", self._wav_unsigned)
        reg(":WAVeform:POINts", self._wav_points)
        reg(":WAVeform:POINts:MODE", self._wav_choice("PMOD", {
            "NORMal": "NORM", "MAXimum": "MAX", "RAW": "RAW"}))
        reg(":WAVeform:PREamble", self._preamble)
        reg(":WAVeform:DATA", self._data)
        for word, pos in (("XINCrement", 4), ("XORigin", 5), ("XREFerence", 6),
                          ("YINCrement", 7), ("YORigin", 8), ("YREFerence", 9)):
            reg(f":WAVeform:{word}", self._preamble_field(pos))
        reg(":SYSTem:PRESet", lambda args, query: self.reset())

    @staticmethod
    def _query_only(get):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "query only")
            return get()
        return handler

    def _store_choice(self, store, key, choices):
        def handler(args, query):
            if query:
                return store()[key]
            self.need(args, 1)
            store()[key] = parse_choice(args[0], choices)
        return handler

    def _tb_choice(self, key, choices):
        return self._store_choice(lambda: self.tb, key, choices)

    def _trig_choice(self, key, choices):
        return self._store_choice(lambda: self.trig, key, choices)

    def _acq_choice(self, key, choices):
        return self._store_choice(lambda: self.acq, key, choices)

    def _wav_choice(self, key, choices):
        return self._store_choice(lambda: self.wav, key, choices)

    def _ch_choice(self, n, key, choices):
        return self._store_choice(lambda: self.chan[n], key, choices)

    def _tb_number(self, key, per):
        """RANGe (per = 1) or SCALe (per = 10 divisions): 2 ns to 500 s full scale."""
        def handler(args, query):
            if query:
                return fmt(self.tb[key] / per)
            self.need(args, 1)
            value = parse_number(args[0]) * per
            if not 2e-9 <= value <= 500.0:
                raise ScpiError(-222, f"time range {value:g} s")
            self.tb[key] = value
        return handler

    def _tb_position(self, args, query):
        if query:
            return fmt(self.tb["POS"])
        self.need(args, 1)
        value = parse_number(args[0])
        if abs(value) > 500.0:
            raise ScpiError(-222, f"position {value:g} s")
        self.tb["POS"] = value

    def _tb_summary(self, args, query):
        if not query:
            raise ScpiError(-113, ":TIMebase")
        tb = self.tb
        return (f":TIM:MODE {tb['MODE']};REF {tb['REF']};MAIN:RANG {fmt(tb['RANG'])};"
                f"POS {fmt(tb['POS'])}")

    def _ch_setting(self, n, show, apply):
        """Handler for a setting of channel ``n``: the query answers ``show(c)``, the command
        runs ``apply(c, text)`` (validates, raising ScpiError, then sets)."""
        def handler(args, query):
            c = self.chan[n]
            if query:
                return show(c)
            self.need(args, 1)
            apply(c, args[0])
        return handler

    def _ch_number(self, n, key, per):
        """SCALe (per = 1) or RANGe (per = 8 divisions), 1 mV/div to 5 V/div × probe."""
        def apply(c, text):
            value = parse_number(text) / per
            if not 1e-3 * c["PROB"] <= value <= 5.0 * c["PROB"]:
                raise ScpiError(-222, f"vertical scale {value:g} V/div")
            c[key] = value
        return self._ch_setting(n, lambda c: fmt(c[key] * per), apply)

    def _ch_offset(self, n):
        def apply(c, text):
            value = parse_number(text)
            if abs(value) > 40.0 * c["PROB"]:
                raise ScpiError(-222, f"offset {value:g} V")
            c["OFFS"] = value
        return self._ch_setting(n, lambda c: fmt(c["OFFS"]), apply)

    def _ch_probe(self, n):
        def apply(c, text):
            value = parse_number(text)
            if not 0.001 <= value <= 10000:
                raise ScpiError(-222, f"probe attenuation {value:g}")
            c["SCAL"] *= value / c["PROB"]
            c["PROB"] = value
        return self._ch_setting(n, lambda c: fmt(c["PROB"]), apply)

    def _ch_flag(self, n, key):
        return self._ch_setting(n, lambda c: "1" if c[key] else "0",
                                lambda c, text: c.__setitem__(key, parse_bool(text)))

    def _ch_label(self, n):
        return self._ch_setting(n, lambda c: f'"{c["LAB"]}"',
                                lambda c, text: c.__setitem__("LAB", parse_string(text)[:10]))

    def _ch_summary(self, n):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, f":CHANnel{n}")
            c = self.chan[n]
            return (f":CHAN{n}:RANG {fmt(8 * c['SCAL'])};OFFS {fmt(c['OFFS'])};"
                    f"COUP {c['COUP']};IMP {c['IMP']};DISP {int(c['DISP'])};"
                    f"BWL {int(c['BWL'])};INV {int(c['INV'])};LAB \"{c['LAB']}\";UNIT VOLT;"
                    f"PROB {fmt(c['PROB'])};PROB:SKEW {fmt(0.0)};STYP SING")
        return handler

    def _trig_source(self, args, query):
        if query:
            return self.trig["SOUR"]
        self.need(args, 1)
        word = args[0].strip().upper()
        chans = {f"CHAN{n}": f"CHAN{n}" for n in range(1, self.n_channels + 1)}
        chans.update({f"CHANNEL{n}": f"CHAN{n}" for n in range(1, self.n_channels + 1)})
        if word in chans:
            self.trig["SOUR"] = chans[word]
        elif word in ("EXT", "EXTERNAL"):
            self.trig["SOUR"] = "EXT"
        else:
            raise ScpiError(-224, f"trigger source {args[0].strip()!r}")

    def _trig_level(self, args, query):
        if query:
            return fmt(self.trig["LEV"])
        self.need(args, 1, 2)
        self.trig["LEV"] = parse_number(args[0])

    def _run(self, args, query):
        self._arm()

    def _stop(self, args, query):
        self.armed_at = None
        self.running = False

    def _single(self, args, query):
        self._arm()

    def _digitize(self, args, query):
        for a in args:
            word = a.strip().upper()
            if not (word.startswith("CHAN") and word[-1].isdigit()
                    and 1 <= int(word[-1]) <= self.n_channels):
                raise ScpiError(-224, f":DIGitize source {a.strip()!r}")
        self._arm()
        self._complete()

    def _autoscale(self, args, query):
        for c in self.chan.values():
            c["SCAL"], c["OFFS"] = 0.5 * c["PROB"], 0.0

    def _ter(self, args, query):
        if not query:
            raise ScpiError(-113, ":TER")
        value, self.triggered = self.triggered, False
        return "+1" if value else "+0"

    def _wav_source_cmd(self, args, query):
        if query:
            return f"CHAN{self.wav['SOUR']}"
        self.need(args, 1)
        word = args[0].strip().upper()
        for n in range(1, self.n_channels + 1):
            if word in (f"CHAN{n}", f"CHANNEL{n}"):
                self.wav["SOUR"] = n
                return None
        raise ScpiError(-224, f"waveform source {args[0].strip()!r}")

    def _wav_unsigned(self, args, query):
        if query:
            return "1" if self.wav["UNS"] else "0"
        self.need(args, 1)
        self.wav["UNS"] = parse_bool(args[0])

    def _wav_points(self, args, query):
        if query:
            return str(self._points()[1])
        self.need(args, 1)
        value = parse_number(args[0], 100, self.record_max)
        if value != int(value) or not 100 <= value <= self.record_max:
            raise ScpiError(-222, f"points {value:g}")
        self.wav["POIN"] = int(value)

    def _preamble_field(self, pos):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, ":WAVeform preamble field")
            return self._preamble([], True).split(",")[pos]
        return handler
