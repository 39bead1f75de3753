"""callvault.server"""
