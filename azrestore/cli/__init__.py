"""The azrestore command line: the only code that prints, renders progress, decides exit
codes or runs the event loop."""
