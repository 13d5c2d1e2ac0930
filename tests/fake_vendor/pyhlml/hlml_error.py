"""pyhlml/hlml_error.py (identical 1.10-1.24.2): HLMLError picks its subclass by code; the subclasses
are made by ErrorsAsClass() inside hlmlInit(), anew at every call."""

CODES = {1: "Uninitialized", 2: "InvalidArgument", 3: "NotSupported", 5: "AlreadyInitialized", 6: "NotFound",
         7: "InsufficientSize", 9: "DriverNotLoaded", 10: "Timeout", 15: "AipIsLost", 20: "Memory", 21: "NoData",
         49: "Unknown"}


class HLMLError(Exception):
    _cMap = {}

    def __new__(typ, value):
        if typ == HLMLError:
            typ = HLMLError._cMap.get(value, typ)
        obj = Exception.__new__(typ)
        obj.value = value
        return obj

    def __str__(self):
        return f"HLML Error with code {self.value}"

    def __eq__(self, other):
        return self.value == other.value


def make_classes():
    for value, name in CODES.items():
        cls = type(f"HLMLError_{name}", (HLMLError,), {"__new__": lambda typ, v=value: HLMLError.__new__(typ, v)})
        globals()[cls.__name__] = cls
        HLMLError._cMap[value] = cls
