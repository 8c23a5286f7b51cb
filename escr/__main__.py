from escr.cli.main import app

app(prog_name="escr")
