from mtrobot.cli import app

app()
