// A Stryker ignorer (stryker.config.mjs, `ignorers`): skips the text of log lines and error
// messages, which the issue lets mutation testing exclude. Only the message itself is skipped:
//   logger.debug|info|warn|error(<message>, ...)   the first argument
//   new <Name>Error(<message>, ...)                the first argument (the field named by the
//                                                 second argument is still mutated)
// and only when that argument is a string or template literal, or a conditional choosing
// between two of them. A template's ${expressions} are part of its text and skipped with it.
import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error']);
const isText = (node) =>
  node.type === 'StringLiteral' ||
  node.type === 'TemplateLiteral' ||
  (node.type === 'ConditionalExpression' && isText(node.consequent) && isText(node.alternate));

function isMessageCall(node) {
  if (node.type === 'CallExpression') {
    const callee = node.callee;
    return (
      callee.type === 'MemberExpression' &&
      callee.property.type === 'Identifier' &&
      LOG_LEVELS.has(callee.property.name) &&
      // logger.info, step.logger.warn, context.logger.error, this.logger.debug
      ((callee.object.type === 'Identifier' && /logger$/i.test(callee.object.name)) ||
        (callee.object.type === 'MemberExpression' &&
          callee.object.property.type === 'Identifier' &&
          /logger$/i.test(callee.object.property.name)))
    );
  }
  if (node.type === 'NewExpression') {
    return node.callee.type === 'Identifier' && /Error$/.test(node.callee.name);
  }
  return false;
}

const ignorer = {
  shouldIgnore(path) {
    const parent = path.parentPath;
    if (
      parent &&
      isMessageCall(parent.node) &&
      parent.node.arguments[0] === path.node &&
      isText(path.node)
    ) {
      return 'log or error message text (stryker.config.mjs: ignorers)';
    }
    return undefined;
  },
};

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'log-and-message-strings', ignorer),
];
