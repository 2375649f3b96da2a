"""Android entry point for buildozer (python-for-android runs main.py); desktops use `fieldwatch-app`."""
from mobile.__main__ import main

main([])
