from escr.cli import app

app(prog_name="escr")
