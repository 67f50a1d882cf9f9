"""The command line: parse arguments, call one library function per command, print.
`main` holds the group; `options` the options and output helpers every command shares.
"""
