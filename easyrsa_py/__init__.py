"""A Python reimplementation of OpenVPN's easy-rsa 3 that works on the same PKI."""

__version__ = "0.1.0"

# The easy-rsa release whose behaviour and on-disk layout this package follows.
EASYRSA_COMPAT_VERSION = "3.2.7"
