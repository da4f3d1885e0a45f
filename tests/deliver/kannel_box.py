"""Kannel for the tests: the servers of :mod:`surmesure.deliver.local`."""

from surmesure.deliver.local import PASSWORD, USER, Phone, kannel, sendsms_url

__all__ = ["PASSWORD", "USER", "Phone", "kannel", "sendsms_url"]
