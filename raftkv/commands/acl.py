"""ACL: users, permissions and the security log (served by the node, see raftkv/server/acl.py)."""

from raftkv.commands.spec import C

S = "server"
_ADMIN = "admin noscript loading stale"

COMMANDS = [
    C("acl", -2, "", 0, 0, 0, "A container for Access List Control commands.", "6.0.0", group=S, sub=[
        C("cat", -2, "noscript loading stale", 0, 0, 0, "Lists the ACL categories, or the commands inside a category.", "6.0.0"),
        C("deluser", -3, _ADMIN, 0, 0, 0, "Deletes ACL users, and terminates their connections.", "6.0.0"),
        C("dryrun", -4, _ADMIN, 0, 0, 0, "Simulates the execution of a command by a user, without executing the command.", "7.0.0"),
        C("genpass", -2, "noscript loading stale", 0, 0, 0, "Generates a pseudorandom, secure password that can be used to identify ACL users.", "6.0.0"),
        C("getuser", 3, _ADMIN, 0, 0, 0, "Lists the ACL rules of a user.", "6.0.0"),
        C("list", 2, _ADMIN, 0, 0, 0, "Dumps the effective rules in ACL file format.", "6.0.0"),
        C("load", 2, _ADMIN, 0, 0, 0, "Reloads the rules from the configured ACL file.", "6.0.0"),
        C("log", -2, _ADMIN, 0, 0, 0, "Lists recent security events generated due to ACL rules.", "6.0.0"),
        C("save", 2, _ADMIN, 0, 0, 0, "Saves the effective ACL rules in the configured ACL file.", "6.0.0"),
        C("setuser", -3, _ADMIN, 0, 0, 0, "Creates and modifies an ACL user and its rules.", "6.0.0"),
        C("users", 2, _ADMIN, 0, 0, 0, "Lists all ACL users.", "6.0.0"),
        C("whoami", 2, "noscript loading stale", 0, 0, 0, "Returns the authenticated username of the current connection.", "6.0.0"),
        C("help", 2, "loading stale", 0, 0, 0, "Returns helpful text about the different subcommands.", "6.0.0"),
    ]),
]
