"""A vendor monitoring library (NVML, HLML) as a collector: the shared half. A subclass says how to
load and start the library, how to find a device's handle, and QUERIES — metric -> how to read it —
so the NVML and HLML collectors are small tables."""

from __future__ import annotations

import contextlib
import io

from bench.devices.collectors import Collector, CollectorUnavailable


class LibraryCollector(Collector):
    prefix = ""
    device_kind = ""
    QUERIES: tuple = ()  # (metric, function(self, handle) -> value in base units or None)

    # -- what a subclass gives ----------------------------------------------------------------------
    def load(self):
        """The library module; CollectorUnavailable when it is not installed."""
        raise NotImplementedError

    def start(self) -> None:
        """Initialise the library; CollectorUnavailable with the reason when it cannot start."""

    def stop(self) -> None: ...

    def handle(self, device: dict):
        """(index for the key prefix, handle) of the device a watch spec names."""
        raise NotImplementedError

    def not_supported(self, exc: BaseException) -> bool:
        """True for an error that will not change (the device cannot answer this query)."""
        return False

    def errors(self) -> tuple:
        return (Exception,)

    # -- shared ----------------------------------------------------------------------------------------
    def open(self) -> None:
        self.lib = self.load()
        with contextlib.redirect_stdout(io.StringIO()):  # libraries print when their shared object is missing
            self.start()
        self.unsupported: set[tuple] = set()  # (device index, metric)
        devices = self.spec.get("devices") or [{"index": i} for i in self.spec.get("indices", [0])]
        try:
            self.handles = dict(self.handle(d) for d in devices)
        except self.errors() as exc:
            self.close()
            raise CollectorUnavailable(f"no handle for {devices}: {type(exc).__name__}: {exc}") from None

    def query(self, metric: str, fn, index):
        """fn(self, handle of device `index`); None when that device does not support it (it is then not
        asked again; another device may well support it) or the call fails."""
        if (index, metric) in self.unsupported:
            return None
        try:
            return fn(self, self.handles[index])
        except self.errors() as exc:
            if self.not_supported(exc):
                self.unsupported.add((index, metric))
        return None

    def sample(self) -> dict:
        out = {}
        for index in self.handles:
            for metric, fn in self.QUERIES:
                out[f"{self.prefix}{index}.{metric}"] = self.query(metric, fn, index)
        return out

    def energy_j(self, index: int) -> float | None:
        fn = dict(self.QUERIES).get("energy_j")
        return None if fn is None else self.query("energy_j", fn, index)

    def sources(self) -> dict:
        return {f"{self.prefix}{i}": {"role": "accelerator", "device": self.device_kind, "index": i, **self.identity(h)}
                for i, h in self.handles.items()}

    def identity(self, handle) -> dict:
        """UUID, name, module ID ... of a device, for the report's telemetry sources."""
        return {}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
