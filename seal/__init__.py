"""Electronic seals (电子印章): key custody, seal issuance, sealing documents and verification."""
