"""The chat backends: one class per service a prompt can go to, behind the contract in `base.py`."""
