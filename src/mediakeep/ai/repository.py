"""(being filled in)"""
