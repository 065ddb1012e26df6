"""Electronic certificates (电子证照): issue, change, revoke, show, authorise, verify."""
