"""OpenVLA's wire format: json-numpy bodies over HTTP (no arena types; see ``codec``)."""
