# Copyright: contributors to ollama-fleet
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the Kafka connection options shared by the kafka_* modules.

The options match CONNECTION_ARGUMENT_SPEC in module_utils/kafka_admin.py.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  bootstrap_servers:
    description: Comma-separated list of brokers as C(host:port).
    type: str
    required: true
  timeout:
    description:
      - Seconds to wait for the broker to answer each request, connection attempts
        included.
    type: float
    default: 10
  security_protocol:
    description: Protocol of the broker's listener.
    type: str
    choices: [PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL]
    default: PLAINTEXT
  sasl_mechanism:
    description: SASL mechanism; required with C(SASL_PLAINTEXT) and C(SASL_SSL).
    type: str
    choices: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]
  sasl_username:
    description: SASL user name.
    type: str
  sasl_password:
    description: SASL password. Never shown in the module's output.
    type: str
  ssl_cafile:
    description: CA certificate file (PEM) that signs the broker's certificate.
    type: path
  ssl_certfile:
    description: Client certificate file (PEM) for mutual TLS.
    type: path
  ssl_keyfile:
    description: Private key file (PEM) of O(ssl_certfile).
    type: path
  ssl_keyfile_password:
    description: Password of O(ssl_keyfile). Never shown in the module's output.
    type: str
  ssl_check_hostname:
    description: Whether to check that the broker's certificate matches its host name.
    type: bool
    default: true
  client_config:
    description:
      - Extra librdkafka settings for the admin client. They override the
        settings that the other connection options produce.
    type: dict
    default: {}
"""
