#!/usr/bin/env python3
"""Django management for the comparison server (django-scim2-server on SQLite)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scimbench.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
