"""pyhlml as it behaves on a machine without the Gaudi driver (habana-pyhlml 1.10-1.24,
pyhlml/hlml_lib.py and hlml_error.py): hlmlInit prints 'Failed to load libhlml' and raises
HLMLError_Uninitialized. Put this folder first on PYTHONPATH to make a subprocess see no Gaudi."""


class HLMLError(Exception):
    pass


class HLMLError_Uninitialized(HLMLError):
    pass


def hlmlInit():
    print("Failed to load libhlml")
    raise HLMLError_Uninitialized(1)
