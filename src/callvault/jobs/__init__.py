"""callvault.jobs"""
