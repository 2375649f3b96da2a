"""Suite-wide set-up. Kivy's environment must be fixed before anything imports kivy."""
import atexit
import os
import shutil
import tempfile

_kivy_home = tempfile.mkdtemp(prefix="kivy-home-")
atexit.register(shutil.rmtree, _kivy_home, True)
os.environ.setdefault("KIVY_HOME", _kivy_home)
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_USE_DEFAULTCONFIG", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_WINDOW", "sdl2")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
if os.environ.get("KIVY_TEST_DISPLAY", "offscreen") == "offscreen":
    os.environ.pop("DISPLAY", None)
    os.environ["SDL_VIDEODRIVER"] = "offscreen"
