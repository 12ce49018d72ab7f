"""What an organisation stores and uses, against its quota."""
