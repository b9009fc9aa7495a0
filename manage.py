#!/usr/bin/env python
"""Django's command line for this project (config/manage.py; a wheel has ``academy-manage``)."""

from config.manage import main

if __name__ == "__main__":
    main()
