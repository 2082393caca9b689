"""The staff console: a server-rendered web page over the same library calls as the CLI (`mailbot web`)."""
