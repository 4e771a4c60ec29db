from flightctl.cli import app

app(prog_name="flightctl")
