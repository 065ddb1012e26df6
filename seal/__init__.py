"""Electronic seals (电子印章): key custody, seal issuance, sealing documents and verification."""

import warnings

# pyHanko imports cryptography's DSA key types, which cryptography 51 deprecates with a warning on every
# start of the hub; the hub never signs or verifies with DSA. Import it once here, the warning silenced.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    import pyhanko.sign.signers.pdf_cms  # noqa: F401
